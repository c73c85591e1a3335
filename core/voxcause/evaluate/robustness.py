"""How much a map changes when the input changes in ways that should not matter.

Perturbations of the normalised model input (seeded):

* ``noise``: add Gaussian noise with sd = 5% of the input's sd;
* ``scale``: multiply intensities by 1.1;
* ``gamma``: gamma 0.8 on the input rescaled to [0, 1], mapped back to its range;
* ``shift1`` / ``shift2``: move the image by 1 / 2 voxels along every axis (the map of the shifted input is
  moved back before comparing, and only voxels away from the wrapped border are compared).

For each, the Spearman rank correlation of the two maps and the IoU of their top-5% voxels (1 = unchanged).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .metrics import spearman, top_fraction_iou

PERTURBATIONS = ("noise", "scale", "gamma", "shift1", "shift2")


def perturb(inputs: torch.Tensor, name: str, *, seed: int = 0) -> tuple[torch.Tensor, int]:
    """Return (perturbed inputs, shift in voxels along every axis; 0 if none)."""
    if name == "noise":
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(inputs.shape, generator=generator).to(inputs.device)
        return inputs + 0.05 * float(inputs.std()) * noise, 0
    if name == "scale":
        return inputs * 1.1, 0
    if name == "gamma":
        low, high = float(inputs.min()), float(inputs.max())
        if high <= low:
            return inputs.clone(), 0
        unit = (inputs - low) / (high - low)
        return low + (high - low) * unit.pow(0.8), 0
    if name.startswith("shift"):
        k = int(name[5:])
        dims = tuple(range(2, inputs.dim()))
        return torch.roll(inputs, shifts=(k,) * len(dims), dims=dims), k
    raise ValueError(f"unknown perturbation {name!r}: use one of {', '.join(PERTURBATIONS)}")


def compare(reference: torch.Tensor, other: torch.Tensor, shift: int, *, fraction: float = 0.05) -> dict:
    """Spearman and top-``fraction`` IoU of two (*S) maps; ``other`` is first moved back by ``shift``."""
    if shift:
        dims = tuple(range(other.dim()))
        other = torch.roll(other, shifts=(-shift,) * len(dims), dims=dims)
    mask = None
    if shift:
        mask = np.zeros(tuple(reference.shape), bool)
        mask[tuple(slice(shift, n - shift) for n in reference.shape)] = True
    return {
        "spearman": spearman(reference, other, mask=mask),
        "top5_iou": top_fraction_iou(reference, other, fraction=fraction, mask=mask),
    }


def robustness(
    explain: Callable[[torch.Tensor, int], torch.Tensor],
    inputs: torch.Tensor,
    reference: torch.Tensor,
    *,
    perturbations: tuple[str, ...] = PERTURBATIONS,
    seed: int = 0,
) -> dict[str, dict]:
    """{perturbation: {"spearman", "top5_iou"}} of ``explain``'s maps against ``reference`` (the unperturbed map).

    ``explain(changed, shift)`` returns the (*S) map of the perturbed inputs; ``shift`` (voxels along every axis,
    0 for intensity changes) lets a target region move with the image.
    """
    out = {}
    for name in perturbations:
        changed, shift = perturb(inputs, name, seed=seed)
        out[name] = compare(reference, explain(changed, shift), shift)
    return out
