"""Small N-D tensor operations shared by the explainers (blurring, foreground boxes)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def gaussian_blur(tensor: torch.Tensor, sigma: float | Sequence[float]) -> torch.Tensor:
    """Separable Gaussian blur of a (B, C, *spatial) tensor, reflect-padded, any number of spatial axes; ``sigma``
    in voxels, one for every axis or one per axis (an anisotropic grid blurred by the same millimetres)."""
    batch, channels, *spatial = tensor.shape
    sigmas = [float(sigma)] * len(spatial) if isinstance(sigma, int | float) else [float(s) for s in sigma]
    if max(sigmas) <= 0:
        return tensor
    out = tensor.float().reshape(batch * channels, 1, *spatial)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[len(spatial)]
    for axis, axis_sigma in enumerate(sigmas):
        if axis_sigma <= 0:
            continue
        radius = max(1, int(math.ceil(3 * axis_sigma)))
        offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=tensor.device)
        kernel = torch.exp(-(offsets**2) / (2 * axis_sigma**2))
        kernel = kernel / kernel.sum()
        shape = [1, 1] + [1] * len(spatial)
        pad = [0, 0] * len(spatial)
        # F.pad lists padding from the last axis backwards.
        position = 2 * (len(spatial) - 1 - axis)
        size = spatial[axis]
        pad[position] = pad[position + 1] = min(radius, size - 1)
        padded = F.pad(out, pad, mode="reflect") if size > 1 else out
        weights = kernel if size > 1 else kernel.new_ones(1)
        trim = radius - min(radius, size - 1)
        if size > 1 and trim:
            weights = kernel[trim:-trim] / kernel[trim:-trim].sum()
        shape[2 + axis] = weights.numel()
        out = conv(padded, weights.reshape(shape))
    return out.reshape(batch, channels, *spatial).to(tensor.dtype)


def foreground_mask(inputs: torch.Tensor, *, tolerance: float = 0.05) -> torch.Tensor:
    """Voxels that differ from the background (the median of the corners) in any channel: the body, not air.

    Args:
        inputs: (1, C, *spatial) image.
        tolerance: fraction of each channel's 1–99 percentile range a voxel must differ by.

    Returns:
        (*spatial) bool tensor.
    """
    image = inputs[0].float()
    channels, *spatial = image.shape
    corners = image[(slice(None),) + tuple(slice(None, None, max(1, s - 1)) for s in spatial)].reshape(channels, -1)
    background = corners.median(dim=1).values
    flat = image.reshape(channels, -1)
    sample = flat[:, :: max(1, flat.shape[1] // 200_000)]
    low, high = torch.quantile(sample, torch.tensor([0.01, 0.99], dtype=sample.dtype, device=sample.device), dim=1)
    spread = (high - low).clamp(min=1e-6)
    shape = (channels,) + (1,) * len(spatial)
    differs = (image - background.reshape(shape)).abs() > tolerance * spread.reshape(shape)
    return differs.any(dim=0)


def bounding_box(mask: torch.Tensor, *, margin: int = 1) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Half-open bounding box (lo, hi) of a bool mask, grown by ``margin``; the whole grid if the mask is empty."""
    shape = tuple(mask.shape)
    if not bool(mask.any()):
        return tuple(0 for _ in shape), shape
    lo, hi = [], []
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        present = torch.nonzero(mask.any(dim=others) if others else mask).flatten()
        lo.append(max(0, int(present.min()) - margin))
        hi.append(min(shape[axis], int(present.max()) + 1 + margin))
    return tuple(lo), tuple(hi)


def dilate(mask: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Binary dilation of a (*S) bool mask by a (2r+1)^n cube, via max pooling (1-3 spatial axes, any device)."""
    pool = {1: torch.nn.functional.max_pool1d, 2: torch.nn.functional.max_pool2d, 3: torch.nn.functional.max_pool3d}[
        mask.ndim
    ]
    return pool(mask[None, None].float(), 2 * radius + 1, stride=1, padding=radius)[0, 0] > 0
