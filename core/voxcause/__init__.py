"""voxcause: causal explanations for 2D/3D medical-imaging classifiers and segmenters.

The flow is ``image + model -> target -> explanation -> evaluation -> findings -> report``:

>>> import voxcause
>>> result = voxcause.explain("case.nii.gz", model="card.json", method="rex", seed=0)  # doctest: +SKIP
>>> result.save("out/")  # doctest: +SKIP
"""

from ._version import __version__
from .api import explain
from .causal import CausalResponsibility
from .errors import InputError
from .explanation import Attribution, Explanation, Explanations
from .io import Volume, read_image, write_image, write_segmentation
from .models import LoadedModel, ModelCard, load_model
from .targets import ClassTarget, RegionTarget, resolve_target


def __getattr__(name: str):
    """`counterfactual` and `make_findings` load on first use (they bring OpenCV and the atlas code)."""
    if name == "counterfactual":
        from .counterfactual import counterfactual

        return counterfactual
    if name == "make_findings":
        from .findings import make_findings

        return make_findings
    raise AttributeError(f"module 'voxcause' has no attribute {name!r}")


__all__ = [
    "Attribution",
    "counterfactual",
    "make_findings", "CausalResponsibility", "ClassTarget", "Explanation", "Explanations", "InputError", "LoadedModel", "ModelCard",
    "RegionTarget", "Volume", "__version__", "explain", "load_model", "read_image", "resolve_target",
    "write_image", "write_segmentation",
]
