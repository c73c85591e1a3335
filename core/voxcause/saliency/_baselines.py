"""What "removed" means: the baseline image an occluded voxel takes.

Baselines are defined on the *normalised* model input: ``"zero"`` is the mean tissue intensity after
z-scoring and the darkest value after min-max; ``"constant"`` is the same as ``"zero"``; ``"blur"`` keeps the
coarse anatomy but removes detail (a Gaussian of ``sigma`` voxels); ``"mean"`` is each channel's mean, ``"min"``
its minimum; a number is a constant. The names are ``voxcause.attribution.BASELINES``, shared with the causal
engine's ``occlusion`` vocabulary. All channels
of a voxel are replaced together.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..attribution import BASELINES  # noqa: F401 - the shared vocabulary, re-exported
from ..errors import InputError


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur over the spatial axes of (B, C, *s), reflect-padded, N-D (2D or 3D)."""
    if sigma <= 0:
        return x.clone()
    radius = max(1, int(math.ceil(3 * sigma)))
    grid = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (grid / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    nd = x.dim() - 2
    conv = F.conv3d if nd == 3 else F.conv2d
    out = x
    for axis in range(nd):
        size = out.shape[2 + axis]
        r = min(radius, size - 1)
        k = kernel[radius - r : radius + r + 1] if r < radius else kernel
        k = k / k.sum()
        shape = [1] * nd
        shape[axis] = k.numel()
        weight = k.reshape(1, 1, *shape).repeat(channels, 1, *([1] * nd))
        pad = [0, 0] * nd
        # F.pad orders pads from the last axis backwards.
        pad[2 * (nd - 1 - axis)] = r
        pad[2 * (nd - 1 - axis) + 1] = r
        out = conv(F.pad(out, pad, mode="reflect" if r > 0 else "constant"), weight, groups=channels)
    return out


def make_baseline(
    inputs: torch.Tensor, baseline: str | float = "zero", *, sigma: float = 4.0
) -> torch.Tensor:
    """Return the baseline image for ``inputs`` (1, C, *s): same shape, same device.

    Args:
        baseline: ``"zero"`` (default), ``"constant"``, ``"blur"``, ``"mean"``, ``"min"`` or a number.
        sigma: Gaussian width in voxels for ``"blur"``.
    """
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.full_like(inputs, float(baseline))
    if baseline in ("zero", "constant"):
        return torch.zeros_like(inputs)
    if baseline == "min":
        dims = tuple(range(2, inputs.dim()))
        return inputs.amin(dim=dims, keepdim=True).expand_as(inputs).clone()
    if baseline == "blur":
        return gaussian_blur(inputs, sigma)
    if baseline == "mean":
        dims = tuple(range(2, inputs.dim()))
        return inputs.mean(dim=dims, keepdim=True).expand_as(inputs).clone()
    raise InputError(f"unknown baseline {baseline!r}: use zero, constant, blur, mean, min or a number")
