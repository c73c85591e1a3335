"""Pieces shared by the saliency methods: upsampling and spatial reductions (the preamble is in the base).

Raw maps keep their meaning (higher = more responsible): nothing here normalises by ``1 - x`` or flips a
map. Upsampling to the model grid is a separate, named step (linear interpolation, ``align_corners=False``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..attribution import check_inputs, report
from ..attribution import check_target as target_region
from ..typing import Progress

__all__ = ["Progress", "check_inputs", "report", "spatial_mean", "spatial_sum", "target_region", "upsample"]


def upsample(cam: torch.Tensor, spatial: tuple[int, ...]) -> torch.Tensor:
    """Linearly interpolate a (B, 1, *s) map onto ``spatial`` (the model grid); no normalisation, no flip."""
    if tuple(cam.shape[2:]) == tuple(spatial):
        return cam
    mode = "trilinear" if len(spatial) == 3 else "bilinear"
    return F.interpolate(cam, size=spatial, mode=mode, align_corners=False)


def spatial_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean over all spatial axes of a (B, K, *s) tensor, keeping them as size-1 axes."""
    return t.mean(dim=tuple(range(2, t.dim())), keepdim=True)


def spatial_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over all spatial axes of a (B, K, *s) tensor, keeping them as size-1 axes."""
    return t.sum(dim=tuple(range(2, t.dim())), keepdim=True)
