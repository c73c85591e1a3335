"""Gradient and occlusion saliency for 2D/3D classifiers and segmenters.

One explainer per module, all with ``Explainer(model, **options).attribute(inputs, *, target, progress)``:
``GradCAM``, ``SegGradCAM``, ``GradCAMPlusPlus``, ``LayerCAM``, ``ScoreCAM`` (need an eager network) and ``Occlusion``
(any model). Maps are on the model grid, higher = more responsible, never flipped.
"""

from .gradcam import GradCAM, SegGradCAM
from .gradcampp import GradCAMPlusPlus
from .layercam import LayerCAM
from .occlusion import Occlusion
from .scorecam import ScoreCAM


def layer_candidates(model, inputs) -> list[dict]:
    """The CAM layer candidates of ``model`` on ``inputs`` (1, C, *spatial): ``{name, shape, convolution,
    automatic}`` in execution order (what ``--layer list`` prints)."""
    from ..models.protocol import as_model, eager_network
    from ._layers import layer_candidates as _candidates

    wrapped = as_model(model)
    return _candidates(eager_network(wrapped, "layer list"), wrapped.forward_raw, inputs)

__all__ = ["GradCAM", "GradCAMPlusPlus", "LayerCAM", "Occlusion", "ScoreCAM", "SegGradCAM", "layer_candidates"]
