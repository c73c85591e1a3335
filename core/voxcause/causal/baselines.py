"""Occlusion values: what a voxel becomes when a mutant hides it.

All channels of a voxel are occluded together (a multi-sequence MRI voxel is one piece of anatomy).
Values are in the model's (normalised) intensity space, so ``constant 0`` is the mean tissue intensity
after z-scoring, as in ReX.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from ..errors import InputError
from ..ops import bounding_box, dilate, foreground_mask, gaussian_blur
from .partition import Box

OCCLUSIONS = ("constant", "min", "mean", "blur", "context")
# ``auto``: the baselines tried, in order of preference among equals (constant 0 is ReX's, the normalised mean);
# PROBES random boxes of PROBE_SHARE of the searched box each; a canvas on which FAKING_SHARE of them pass adds
# evidence.
AUTO_ORDER = ("constant", "mean", "min", "blur")
PROBES = 8
PROBE_SHARE = 0.04
FAKING_SHARE = 0.5
Scores = Callable[[torch.Tensor], list[tuple[float, bool]]]


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


def ordered_canvases(
    image: torch.Tensor,
    occluded: torch.Tensor,
    box: Box,
    score: Scores,
    *,
    foreground: torch.Tensor | None = None,
    value: float = 0.0,
    seed: int = 0,
) -> Iterator[tuple[str, torch.Tensor, tuple[float, bool]]]:
    """The fully occluded images of `AUTO_ORDER`, best first: ``(kind, canvas (C, *S), (score, still decides))``.

    A canvas must remove evidence without adding any. Removing: the fully occluded image must lose the decision
    (a classifier that calls a flat grey brain "glioma" passes every mutant, and then a baseline that only just
    fails makes any scrap of image "sufficient"). Not adding: a canvas whose edges the model reads as evidence
    (a ``min`` canvas around a pasted box is a sharp edge everywhere) lets random scraps of tissue pass. So a
    baseline's fully occluded image and `PROBES` mutants showing one random box of `PROBE_SHARE` of ``box``
    each are scored (``score`` takes a batch and returns (score, decision holds) per sample), and the baselines
    are ordered by: fully occluded loses the decision, then whether it fakes evidence (at least `FAKING_SHARE`
    of the probes pass: one probe may hit the cause itself, most cannot), then `AUTO_ORDER`. Not by the lowest
    fully occluded score: the darkest canvas scores lowest, and on a trained sphere/cube CNN
    (bench/bench_causal.py) its pasted boxes read as cubes, so its map was the worst of the four (rank accuracy
    0.53-0.58 against 0.61-0.74 with constant).

    Lazy: baselines are scored in `AUTO_ORDER` only until one is clean (loses the decision, fakes nothing),
    which no later one can beat, so the usual cost is one baseline's 9 passes, not 36; the rest are scored only
    when the caller asks for the next canvas (its explanation failed its certificate).

    Args:
        image: (1, C, *S) the normalised image; occluded: (*S) bool voxels a canvas replaces; box: where probes go.
    """
    probes = probe_boxes(box, np.random.default_rng([seed, 7919]))
    pending = list(enumerate(AUTO_ORDER))
    ranked: list[tuple[tuple, str, torch.Tensor, tuple[float, bool]]] = []
    while pending or ranked:
        while pending:
            index, kind = pending.pop(0)
            baseline = occlusion_baseline(image, kind, value=value, foreground=foreground)
            canvas = torch.where(occluded, baseline[0], image[0])
            batch = canvas.expand(len(probes) + 1, *canvas.shape).clone()
            for slot, probe in enumerate(probes, start=1):
                batch[(slot, slice(None), *probe.slices())] = image[(0, slice(None), *probe.slices())]
            outcomes = score(batch)
            passing = sum(ok for _, ok in outcomes[1:]) / len(probes)
            fakes = passing >= FAKING_SHARE
            key = (outcomes[0][1], fakes, passing if fakes else 0.0, index)
            ranked.append((key, kind, canvas, outcomes[0]))
            if not key[0] and not fakes:
                break
        ranked.sort(key=lambda item: item[0])
        _, kind, canvas, outcome = ranked.pop(0)
        yield kind, canvas, outcome


def auto_canvas(image: torch.Tensor, score: Scores, *, value: float = 0.0, seed: int = 0) -> tuple[str, torch.Tensor]:
    """``(kind, canvas (C, *S))``: the canvas occlusion ``auto`` chooses for a (1, C, *S) image (the first of
    `ordered_canvases` over its `occludable_region`) — what a method without its own baseline is certified on,
    and the reference a forced baseline is checked against."""
    foreground, box, occluded = occludable_region(image)
    kind, canvas, _ = next(ordered_canvases(image, occluded, box, score, foreground=foreground, value=value, seed=seed))
    return kind, canvas


def probe_boxes(box: Box, rng: np.random.Generator) -> list[Box]:
    """`PROBES` random boxes inside ``box``, each `PROBE_SHARE` of its volume (same shape ratio)."""
    size = [max(1, round((hi - lo) * PROBE_SHARE ** (1 / len(box.lo)))) for lo, hi in zip(box.lo, box.hi, strict=True)]
    boxes = []
    for _ in range(PROBES):
        lo = [int(rng.integers(a, b - n + 1)) for a, b, n in zip(box.lo, box.hi, size, strict=True)]
        boxes.append(Box(tuple(lo), tuple(a + n for a, n in zip(lo, size, strict=True))))
    return boxes
