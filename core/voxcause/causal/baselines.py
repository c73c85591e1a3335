"""Occlusion values: what a voxel becomes when a mutant hides it.

All channels of a voxel are occluded together (a multi-sequence MRI voxel is one piece of anatomy).
Values are in the model's (normalised) intensity space, so ``constant 0`` is the mean tissue intensity
after z-scoring, as in ReX.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ..ops import bounding_box, dilate, foreground_mask, gaussian_blur
from .partition import Box

OCCLUSIONS = ("constant", "min", "mean", "blur", "context")


def occlusion_baseline(
    inputs: torch.Tensor,
    kind: str = "constant",
    *,
    value: float = 0.0,
    foreground: torch.Tensor | None = None,
    blur_sigma: float | None = None,
    context: torch.Tensor | None = None,
) -> torch.Tensor:
    """The (1, C, *S) image a fully occluded input becomes.

    Args:
        inputs: (1, C, *S) normalised image.
        kind: ``constant`` (``value``), ``min`` (per-channel minimum), ``mean`` (per-channel mean inside
            ``foreground``), ``blur`` (Gaussian blur, sigma default 1/16 of the smallest spatial size), or
            ``context`` (a healthy/reference volume ``context`` of the same shape).
    """
    channels = inputs.shape[1]
    shape = (1, channels) + (1,) * (inputs.ndim - 2)
    if kind == "constant":
        return torch.full_like(inputs, float(value))
    if kind == "min":
        return inputs.amin(dim=tuple(range(2, inputs.ndim)), keepdim=True).expand_as(inputs).clone()
    if kind == "mean":
        if foreground is None or not foreground.any():
            means = inputs.mean(dim=tuple(range(2, inputs.ndim)))
        else:
            means = inputs[0][:, foreground].mean(dim=1)[None]
        return means.reshape(shape).expand_as(inputs).clone()
    if kind == "blur":
        sigma = blur_sigma if blur_sigma is not None else max(1.0, min(inputs.shape[2:]) / 16)
        return gaussian_blur(inputs, sigma)
    if kind == "context":
        if context is None or tuple(context.shape) != tuple(inputs.shape):
            raise InputError("the context (healthy) volume must have the image's grid and channels — resample it first")
        return context.to(inputs.device, inputs.dtype)
    raise InputError(f"unknown occlusion {kind!r} — use one of {', '.join(OCCLUSIONS)} or a volume path")


def occludable_region(image: torch.Tensor) -> tuple[torch.Tensor, Box, torch.Tensor]:
    """``(foreground, box, occluded)`` of a (1, C, *S) image: the body, its bounding box, and the voxels a canvas
    replaces — the body (one voxel grown) inside the box. Air inside the box stays air: filling it with tissue
    would add a cube the model has never seen."""
    foreground = foreground_mask(image)
    box = Box(*bounding_box(foreground))
    occluded = torch.zeros_like(foreground)
    occluded[box.slices()] = True
    return foreground, box, occluded & dilate(foreground, 1)
