"""The choices a user makes in the panel, as enums shared by the GUI, the parameter node and the command line.

Why enums: the parameter node wrapper binds an `enum.Enum` to a combo box by itself (using `label()` for the
text), and the command builder maps each member to exactly one `voxcause` flag value, so the GUI can never send
a method name the command line does not know.
"""

from __future__ import annotations

import enum


class Method(enum.Enum):
    """What explains the decision; the value is the `voxcause explain --method` name."""

    REX = "rex"
    GRADCAM = "gradcam"
    GRADCAMPP = "gradcampp"
    SCORECAM = "scorecam"
    OCCLUSION = "occlusion"
    DEA = "dea"
    COUNTERFACTUAL = "counterfactual"

    def label(self) -> str:
        """Text shown in the method combo box."""
        return _METHOD_LABELS[self]

    @property
    def is_counterfactual(self) -> bool:
        """Counterfactuals run `voxcause counterfactual` and need a segment as the region."""
        return self is Method.COUNTERFACTUAL

    def sends(self, option: str) -> bool:
        """Whether the panel's control for the core option ``option`` applies to this method (and is sent)."""
        return option in _PANEL_OPTIONS.get(self, ())


#: The method a new request starts with: the core's default (``voxcause.explainers.DEFAULT_METHOD``, which the
#: panel cannot import; tests/slicer/test_lib_defaults.py checks that the two agree).
DEFAULT_METHOD = Method.REX

#: The core options (names of `voxcause methods --json`) that the panel's controls set, per method: a control
#: is enabled and its flag sent only for the methods listed, so no method is sent an option it does not declare
#: (tests/slicer/test_lib_defaults.py checks each against the core's declarations).
_PANEL_OPTIONS = {Method.REX: ("iterations", "occlusion")}

_METHOD_LABELS = {
    Method.REX: "Causal responsibility (ReX)",
    Method.GRADCAM: "Saliency: Grad-CAM",
    Method.GRADCAMPP: "Saliency: Grad-CAM++",
    Method.SCORECAM: "Saliency: Score-CAM",
    Method.OCCLUSION: "Saliency: occlusion",
    Method.DEA: "Fused: dual evidence (segmenters)",
    Method.COUNTERFACTUAL: "Counterfactual (remove / keep a segment)",
}


class Occlusion(enum.Enum):
    """What replaces occluded voxels; the value is the `--occlusion` argument.

    `DEFAULT` sends no `--occlusion` at all, so the run gets the core's own default (today `auto`); the panel
    names it from `voxcause methods --json` (see `defaults`) and never hard-codes it.
    """

    DEFAULT = "default"
    AUTO = "auto"
    CONSTANT = "constant"
    MIN = "min"
    MEAN = "mean"
    BLUR = "blur"
    SHUFFLE = "shuffle"
    SCRAMBLE = "scramble"

    def label(self) -> str:
        """Text shown in the occlusion combo box."""
        return {
            Occlusion.DEFAULT: "Core default",
            Occlusion.AUTO: "Automatic (removes the most evidence)",
            Occlusion.CONSTANT: "Constant (0)",
            Occlusion.MIN: "Image minimum",
            Occlusion.MEAN: "Image mean",
            Occlusion.BLUR: "Blurred image",
            Occlusion.SHUFFLE: "Body's voxels shuffled (normalising networks)",
            Occlusion.SCRAMBLE: "Whole image's voxels, air included, scrambled (normalising networks)",
        }[self]


class Device(enum.Enum):
    """Where the model runs. CPU is enforced twice: `--device cpu` and `CUDA_VISIBLE_DEVICES=""`."""

    CPU = "cpu"
    CUDA = "cuda"

    def label(self) -> str:
        """Text shown in the device combo box."""
        return {Device.CPU: "CPU", Device.CUDA: "GPU (CUDA)"}[self]
