"""Grad-CAM (Selvaraju et al. 2017), N-D.

    w_k = mean_s dy/dA_k(s),    map = ReLU(sum_k w_k A_k), upsampled linearly to the model grid.

``y`` is the target's ``logit_score``: the class logit, or for a region target the sum of the class logits
over the region (which makes this Seg-Grad-CAM, Vinogradova et al. 2020).

Example (3D):
    >>> import torch
    >>> from voxcause.saliency import GradCAM
    >>> net = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> from voxcause.targets import ClassTarget
    >>> GradCAM(net).attribute(torch.rand(1, 1, 16, 16, 16), target=ClassTarget(1, "lesion")).map.shape
    torch.Size([16, 16, 16])
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ..explanation import Attribution
from ..typing import Progress, Target
from ._cam import CAMBase, SingleLayerCAMOptions
from ._common import spatial_mean


class GradCAM(CAMBase):
    """Grad-CAM: channel weights are the spatially averaged gradients. Options: ``layer``, ``min_fraction``,
    ``layer_rule`` (default ``graph``: the faithful choice of `_faithful` moved 3 of 8 known-cause DenseNet121
    maps to the stem, 2.8-3.8x a uniform map's mass on the cause instead of 4.8-9.8x, though it lifts the trained 2D UNet of
    tests/saliency/test_cam_vs_monai.py from 0.19-0.37 to 0.98 near the cause: ``--option
    gradcam.layer_rule=faithful`` on segmenters)."""

    name = "gradcam"
    options = SingleLayerCAMOptions

    def weigh(self, activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        return spatial_mean(gradient)


class SegGradCAM(GradCAM):
    """Seg-Grad-CAM: Grad-CAM of the summed class logits over a region; needs a region target."""

    name = "seggradcam"

    def _attribute(self, inputs: torch.Tensor, target: Target, progress: Progress | None) -> Attribution:
        if getattr(target, "region", None) is None:
            raise InputError(
                "seggradcam explains a class inside a region of a segmentation: pass --region, use a segmentation "
                "model, or use --method gradcam for a classifier"
            )
        return super()._attribute(inputs, target, progress)
