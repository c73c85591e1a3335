"""What a removed voxel becomes: one vocabulary and one `canvas` for every method that removes evidence.

The causal engine's occlusion, occlusion and Score-CAM's baseline, the certificate's mutants and the
counterfactual's region-only image all replace voxels by `canvas`, so a name means the same everywhere. Values
are in the model's (normalised) intensity space, and all channels of a voxel are replaced together (a
multi-sequence MRI voxel is one piece of anatomy):

* ``zero``: 0, the mean tissue intensity after z-scoring (ReX's choice); ``constant``: ``value`` (default 0;
  one per channel allowed); a number: that constant;
* ``mean``: each channel's mean over the body (``foreground``; default `ops.foreground_mask`), so that what
  is removed looks like average tissue, not like air mixed in;
* ``min``: each channel's minimum over the image (the darkest value of the scan);
* ``blur``: a Gaussian blur of the image, sigma `blur_sigma` voxels (default 1/16 of the smallest spatial
  size, at least 1): coarse anatomy kept, structure removed;
* ``shuffle``: the body's own voxels (``foreground``) in a random order (seeded by ``seed``; all channels of a
  voxel move together): structure removed, the intensity histogram kept, so a network that normalises each
  image (InstanceNorm, z-scoring) still sees tissue statistics — a constant canvas becomes all zeros after
  the first InstanceNorm, whatever the constant;
* ``scramble``: every voxel of the image, air included, in a random order (seeded by ``seed``; all channels of
  a voxel move together). Where the body is occluded it becomes a random draw of the whole image's voxels,
  tissue and air mixed: no structure, the intensities the image has. A network can read a body shuffled within
  itself as anatomy still — HD-BET's cortex cube, with the whole head occluded (fold 0, threshold 0.449): 0.496
  on ``shuffle``, 0.000 on ``scramble`` (`bench/bench_canvases.py`);
* ``context``: a healthy/reference volume of the image's shape, given by the user.

Which voxels are replaced is each method's business (``where``): the causal engine replaces the body only
(air stays air), occlusion a window, the counterfactual everything outside a region. Counterfactual
*inpainting* (`voxcause.counterfactual.inpaint`) is a removal of its own kind, not a canvas.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .errors import InputError
from .ops import foreground_mask, gaussian_blur
from .typing import Removal

REMOVALS: tuple[str, ...] = ("zero", "constant", "mean", "min", "blur", "shuffle", "scramble", "context")


def as_removal(removal: Removal) -> Removal:
    """``removal`` checked: a name of `REMOVALS` or a number (a numeric string, as recorded in params, too).

    Raises:
        InputError: any other name, with the choices.
    """
    if isinstance(removal, int | float) and not isinstance(removal, bool):
        return float(removal)
    if removal in REMOVALS:
        return removal
    try:
        return float(removal)
    except (TypeError, ValueError):
        raise InputError(
            f"unknown removal {removal!r} — use one of {', '.join(REMOVALS)}, a number, or a volume path"
        ) from None


def default_blur_sigma(spatial: Sequence[int]) -> float:
    """The ``blur`` width in voxels: 1/16 of the smallest spatial size, at least 1 (4 voxels at 64^3)."""
    return max(1.0, min(spatial) / 16)


def canvas(
    inputs: torch.Tensor,
    removal: Removal,
    *,
    where: torch.Tensor | None = None,
    value: float | Sequence[float] = 0.0,
    foreground: torch.Tensor | None = None,
    context: torch.Tensor | None = None,
    blur_sigma: float | Sequence[float] | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """A (1, C, *S) copy of ``inputs`` (1, C, *S) with the voxels of ``where`` removed by ``removal``.

    Args:
        removal: a name of `REMOVALS` or a number (see the module docstring).
        where: (*S) bool voxels replaced; None replaces every voxel (the removal's own image).
        value: the constant of ``constant``, one or one per channel.
        foreground: (*S) bool body for ``mean``; default `ops.foreground_mask` of ``inputs``.
        context: (1, C, *S) the reference volume of ``context``.
        blur_sigma: ``blur`` width in voxels, one or one per spatial axis; default `default_blur_sigma`.
        seed: the order of ``shuffle`` and ``scramble``.

    Raises:
        InputError: an unknown removal, or a context volume of another shape.
    """
    removal = as_removal(removal)
    if not isinstance(removal, str):
        removed = torch.full_like(inputs, removal)
    elif removal == "zero":
        removed = torch.zeros_like(inputs)
    elif removal == "constant":
        levels = torch.as_tensor(value, dtype=inputs.dtype, device=inputs.device).reshape(1, -1, *([1] * (inputs.ndim - 2)))
        removed = levels.expand_as(inputs).clone()
    elif removal == "min":
        removed = inputs.amin(dim=tuple(range(2, inputs.ndim)), keepdim=True).expand_as(inputs).clone()
    elif removal == "mean":
        body = foreground_mask(inputs) if foreground is None else foreground.to(inputs.device).bool()
        means = inputs[0][:, body].mean(dim=1) if body.any() else inputs[0].flatten(1).mean(dim=1)
        removed = means.reshape(1, -1, *([1] * (inputs.ndim - 2))).expand_as(inputs).clone()
    elif removal in ("shuffle", "scramble"):
        if removal == "scramble":
            body = torch.ones(inputs.shape[2:], dtype=torch.bool, device=inputs.device).flatten()
        else:
            body = (foreground_mask(inputs) if foreground is None else foreground.to(inputs.device).bool()).flatten()
        voxels = body.nonzero().flatten()
        order = torch.randperm(len(voxels), generator=torch.Generator().manual_seed(seed)).to(voxels.device)
        flat = inputs.reshape(1, inputs.shape[1], -1)
        removed = flat.clone()
        removed[:, :, voxels] = flat[:, :, voxels[order]]
        removed = removed.reshape(inputs.shape)
    elif removal == "blur":
        removed = gaussian_blur(inputs, default_blur_sigma(inputs.shape[2:]) if blur_sigma is None else blur_sigma)
    else:
        if context is None or tuple(context.shape) != tuple(inputs.shape):
            raise InputError("the context (healthy) volume must have the image's grid and channels — resample it first")
        removed = context.to(inputs.device, inputs.dtype).clone()
    return removed if where is None else torch.where(where.to(inputs.device).bool(), removed, inputs)


__all__ = ["REMOVALS", "as_removal", "canvas", "default_blur_sigma"]
