"""Pieces shared by the saliency methods: input checks, upsampling, target checks, progress.

Raw maps keep their meaning (higher = more responsible): nothing here normalises by ``1 - x`` or flips a
map. Upsampling to the model grid is a separate, named step (linear interpolation, ``align_corners=False``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import InputError

Progress = Callable[[str, float], None] | None


def check_inputs(inputs: torch.Tensor) -> torch.Tensor:
    """Accept (1, C, *spatial) with 2 or 3 spatial axes; return it as float32."""
    if not isinstance(inputs, torch.Tensor):
        raise InputError(f"inputs must be a torch.Tensor (1, C, *spatial), got {type(inputs).__name__}")
    if inputs.dim() not in (4, 5) or inputs.shape[0] != 1:
        raise InputError(
            f"inputs must be shaped (1, C, H, W) or (1, C, D, H, W), got {tuple(inputs.shape)}: "
            "explain one image at a time"
        )
    return inputs.float()


def target_region(target: Any) -> torch.Tensor | None:
    """The target's region mask (bool, *spatial) or None; an empty region is bad input."""
    region = getattr(target, "region", None)
    if region is None:
        return None
    region = torch.as_tensor(region).bool()
    if not bool(region.any()):
        raise InputError(
            "the target region is empty (no voxel of the class is predicted or given): pass --region with a "
            "non-empty mask, or choose a --target the model predicts"
        )
    return region


def upsample(cam: torch.Tensor, spatial: tuple[int, ...]) -> torch.Tensor:
    """Linearly interpolate a (B, 1, *s) map onto ``spatial`` (the model grid); no normalisation, no flip."""
    if tuple(cam.shape[2:]) == tuple(spatial):
        return cam
    mode = "trilinear" if len(spatial) == 3 else "bilinear"
    return F.interpolate(cam, size=spatial, mode=mode, align_corners=False)


def report(progress: Progress, stage: str, fraction: float) -> None:
    """Send one progress event if the caller asked for them."""
    if progress is not None:
        progress(stage, float(min(max(fraction, 0.0), 1.0)))


def spatial_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean over all spatial axes of a (B, K, *s) tensor, keeping them as size-1 axes."""
    return t.mean(dim=tuple(range(2, t.dim())), keepdim=True)


def spatial_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over all spatial axes of a (B, K, *s) tensor, keeping them as size-1 axes."""
    return t.sum(dim=tuple(range(2, t.dim())), keepdim=True)
