"""Occlusion ``auto``: which canvas the search runs on, and the next one when its explanation fails.

A canvas (the fully occluded image) must remove evidence without adding any. `ordered_canvases` ranks the
baselines of `AUTO_ORDER` by what they do to random boxes of tissue pasted on them, lazily; `attempts` runs
the whole explanation on the best and, while its certificate fails, on the next (at most `MAX_AUTO_ATTEMPTS`),
and `best_attempt` keeps the best verdict. A forced baseline is one canvas, tried once, and checked against the
canvas auto would choose (`reference_canvas`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from ..certificate import KEEP_MARGIN, Certificate
from ..ops import bounding_box, dilate, foreground_mask
from ..removal import canvas as removed
from .partition import Box

Outcome = tuple[float, bool]
Measures = Callable[[torch.Tensor], list[tuple[float, bool, float]]]
# A crop's search asks this of a canvas kind (`crop.FullInputCanvasCheck`): None when the full input occluded on
# it loses the decision too, else the full input's (score, margin).
FullCheck = Callable[[str], "tuple[float, float] | None"]
# the baselines tried, in order of preference among equals (constant 0 is ReX's, the normalised mean);
# PROBES random boxes of PROBE_SHARE of the searched box each; a canvas on which FAKING_SHARE of them pass adds
# evidence. Last, ``scramble`` (the body filled from the whole image's voxels, air included, in a random order:
# tissue and air mixed) for a network that still reads a body shuffled within itself as anatomy: HD-BET's cortex
# cube, the whole head occluded, keeps "brain" at 0.999 on constant and 0.496 on shuffle (threshold 0.449), loses
# it at 0.000 on scramble (`bench/bench_canvases.py`). HD-BET's raw outputs are not scale invariant to 1%
# (`scale_invariant`), so it gets this order, not `NORMALISED_ORDER`.
AUTO_ORDER = ("constant", "mean", "min", "blur", "shuffle", "scramble")
# A network whose output does not change when the whole input is scaled (a convolution then InstanceNorm, as in
# MONAI's UNet and HD-BET, or its own z-score) re-normalises whatever a canvas leaves: a flat canvas removes the
# body's statistics and the kept tissue is re-scaled, so an explanation on it must keep whatever restores them
# (the sample segmenter: 560 ml on constant 0, with a slab far below the tumour; 46.5 ml, 71% in the tumour, on
# shuffle). For such a network the body's own voxels shuffled (its statistics kept, its structure gone) come
# first. Scale-invariant means: the raw outputs (logits) of the input and of SCALE_PROBE times it agree within
# SCALE_TOLERANCE of their range (logits, not probabilities: a saturated classifier is at 1.0 either way).
# Then ``scramble``, the same statistics with air mixed in.
NORMALISED_ORDER = ("shuffle", "scramble", *(kind for kind in AUTO_ORDER if kind not in ("shuffle", "scramble")))
SCALE_PROBE = 2.0
SCALE_TOLERANCE = 0.01
PROBES = 8
PROBE_SHARE = 0.04
FAKING_SHARE = 0.5
# how many canvases are searched at most when the first explanation's certificate fails.
MAX_AUTO_ATTEMPTS = 3
VERDICT_ORDER = ("pass", "weak", "fail")


class Canvas(NamedTuple):
    """A fully occluded image (C, *S) of baseline ``kind``, its (score, decision still holds) and the decision's
    margin on it (`Target.margin`); ``on_full``: for a crop's canvas that loses the decision on the crop but not
    on the full input, the full input's (score, margin) (`FullCheck`)."""

    kind: str
    image: torch.Tensor
    outcome: Outcome
    margin: float
    on_full: tuple[float, float] | None = None

    def removes(self, band: float) -> bool:
        """Whether the fully occluded image loses the decision by ``band`` (on the full input too, for a crop)."""
        return self.margin <= -band and self.on_full is None


@dataclass
class Attempt:
    """One explanation on one canvas: the map, masks and their certificate."""

    occlusion: str
    map: torch.Tensor
    masks: dict[str, torch.Tensor]
    details: dict
    counts: dict
    depth: int
    iterations: dict
    timings: dict
    certificate: Certificate
    passes: dict = field(default_factory=dict)  # forward passes per stage, as ``timings`` has seconds


def occludable_region(
    image: torch.Tensor, within: tuple[slice, ...] | None = None
) -> tuple[torch.Tensor, Box, torch.Tensor]:
    """``(foreground, box, occluded)`` of a (1, C, *S) image: the body, its bounding box, and the voxels a canvas
    replaces — the body (one voxel grown) inside the box. Air inside the box stays air: filling it with tissue
    would add a cube the model has never seen. ``within`` (spatial slices, e.g. `mutants.reach`) cuts the box
    to the voxels that can change the target at all; the rest is never occluded."""
    foreground = foreground_mask(image)
    box = Box(*bounding_box(foreground))
    if within is not None:
        lo = tuple(max(a, s.start) for a, s in zip(box.lo, within, strict=True))
        hi = tuple(min(b, s.stop) for b, s in zip(box.hi, within, strict=True))
        box = Box(lo, hi) if all(a < b for a, b in zip(lo, hi, strict=True)) else box
    occluded = torch.zeros_like(foreground)
    occluded[box.slices()] = True
    return foreground, box, occluded & dilate(foreground, 1)


def scale_invariant(model, image: torch.Tensor, box: tuple[slice, ...] | None = None) -> bool:
    """Whether ``model``'s output on a (1, C, *S) image (in ``box``, for a region target) stays the same when the
    image is scaled by `SCALE_PROBE`: a network that normalises each input (two passes, one batch)."""
    with torch.no_grad():
        raw = model.forward_raw(torch.cat([image, image * SCALE_PROBE]), box=box).float()
    if not bool(torch.isfinite(raw).all()):
        return False
    spread = float(raw[0].abs().max()) or 1.0
    return float((raw[0] - raw[1]).abs().max()) <= SCALE_TOLERANCE * spread


def canvas_order(model, image: torch.Tensor, box: tuple[slice, ...] | None = None) -> tuple[str, ...]:
    """The order occlusion ``auto`` tries baselines in for this model: `NORMALISED_ORDER` for a network that
    normalises its input (`scale_invariant`), `AUTO_ORDER` otherwise."""
    return NORMALISED_ORDER if scale_invariant(model, image, box) else AUTO_ORDER


def ordered_canvases(
    image: torch.Tensor,
    occluded: torch.Tensor,
    box: Box,
    measure: Measures,
    *,
    band: float = 0.0,
    foreground: torch.Tensor | None = None,
    value: float = 0.0,
    seed: int = 0,
    order: tuple[str, ...] = AUTO_ORDER,
    full_check: FullCheck | None = None,
) -> Iterator[Canvas]:
    """The fully occluded images of ``order`` (`AUTO_ORDER`, or `canvas_order`'s), best first.

    A canvas must remove evidence without adding any. Removing: the fully occluded image must lose the decision
    clearly, its margin at least ``band`` below the threshold (a classifier that calls a flat grey brain
    "glioma" passes every mutant, and a baseline that only just fails makes any scrap of image "sufficient":
    a certified explanation of 40 pixels of scalp at 0.500031 against 0.5). Not adding: a canvas whose edges the model reads as evidence
    (a ``min`` canvas around a pasted box is a sharp edge everywhere) lets random scraps of tissue pass. So a
    baseline's fully occluded image and `PROBES` mutants showing one random box of `PROBE_SHARE` of ``box``
    each are scored (``measure`` takes a batch and returns (score, decision holds, margin) per sample), and the
    baselines
    are ordered by: fully occluded loses the decision, then whether it fakes evidence (at least `FAKING_SHARE`
    of the probes pass: one probe may hit the cause itself, most cannot), then ``order``. Not by the lowest
    fully occluded score: the darkest canvas scores lowest, and on a trained sphere/cube CNN
    (bench/bench_causal.py) its pasted boxes read as cubes, so its map was the worst of the four (rank accuracy
    0.53-0.58 against 0.61-0.74 with constant).

    Lazy: baselines are scored in ``order`` only until one is clean (loses the decision, fakes nothing),
    which no later one can beat, so the usual cost is one baseline's 9 passes, not 45; the rest are scored only
    when the caller asks for the next canvas (its explanation failed its certificate). A baseline whose fully
    occluded image keeps the decision costs that one pass: it ranks after every one that loses it, so its
    probes could not change the choice (HD-BET, whose InstanceNorm undoes constant canvases: 4 passes instead
    of 36 before it reaches ``shuffle``).

    A crop's search (``full_check``) asks, of each baseline whose fully occluded crop loses the decision, whether
    the full input loses it too (one full pass each, before the probes): one that does not removes the evidence
    only because the crop leaves out the rest of the image, and ranks with those that keep the decision (ahead
    of them); the next baseline is tried. HD-BET's cortex region: ``constant`` and ``shuffle`` lose it on the
    48^3 crop (0.014, 0.050) but not on the whole head, so the run fails at once, without their 16 probes.

    Args:
        image: (1, C, *S) the normalised image; occluded: (*S) bool voxels a canvas replaces; box: where probes go.
    """
    probes = probe_boxes(box, np.random.default_rng([seed, 7919]))
    pending = list(enumerate(order))
    ranked: list[tuple[tuple, Canvas]] = []
    while pending or ranked:
        while pending:
            index, kind = pending.pop(0)
            canvas = removed(image, kind, where=occluded, value=value, foreground=foreground, seed=seed)[0]
            occluded_score, occluded_ok, occluded_margin = measure(canvas[None])[0]
            on_full = _full_input(full_check, kind, occluded_margin, band)
            keeps = occluded_margin > -band or on_full is not None
            passing = 0.0
            if not keeps:  # a canvas that keeps the decision ranks last whatever its probes say: none scored
                passing = sum(ok for _, ok, _ in measure(probe_mutants(image, canvas, probes))) / len(probes)
            fakes = passing >= FAKING_SHARE
            key = (keeps, fakes, passing if fakes else 0.0, on_full is None, index)
            ranked.append((key, Canvas(kind, canvas, (occluded_score, occluded_ok), occluded_margin, on_full)))
            if not key[0] and not fakes:
                break
        ranked.sort(key=lambda item: item[0])
        yield ranked.pop(0)[1]


def auto_canvas(
    image: torch.Tensor, measure: Measures, *, band: float | None = None, value: float = 0.0, seed: int = 0,
    order: tuple[str, ...] = AUTO_ORDER,
) -> tuple[str, torch.Tensor]:
    """``(kind, canvas (C, *S))``: the canvas occlusion ``auto`` chooses for a (1, C, *S) image (the first of
    `ordered_canvases` over its `occludable_region`) — what a method without its own baseline is certified on,
    and the reference a forced baseline is checked against. ``band``: the margin a fully occluded image must
    lose the decision by; None measures the image (one pass) for `KEEP_MARGIN` of its margin."""
    if band is None:
        band = KEEP_MARGIN * max(measure(image)[0][2], 0.0)
    foreground, box, occluded = occludable_region(image)
    chosen = next(ordered_canvases(image, occluded, box, measure, band=band, foreground=foreground, value=value,
                                   seed=seed, order=order))
    return chosen.kind, chosen.image


def _full_input(full_check: FullCheck | None, kind: str, margin: float, band: float) -> tuple[float, float] | None:
    """A crop's canvas of ``kind`` whose fully occluded crop loses the decision (``margin`` below ``-band``): the
    full input's (score, margin) when it does not lose it there (`FullCheck`); None otherwise, or without a crop."""
    return full_check(kind) if full_check is not None and margin <= -band else None


def probe_mutants(image: torch.Tensor, canvas: torch.Tensor, probes: list[Box]) -> torch.Tensor:
    """(P, C, *S): the (C, *S) ``canvas`` with one probe box of the (1, C, *S) ``image`` pasted on it per sample."""
    batch = canvas.expand(len(probes), *canvas.shape).clone()
    for slot, probe in enumerate(probes):
        batch[(slot, slice(None), *probe.slices())] = image[(0, slice(None), *probe.slices())]
    return batch


def probe_boxes(box: Box, rng: np.random.Generator) -> list[Box]:
    """`PROBES` random boxes inside ``box``, each `PROBE_SHARE` of its volume (same shape ratio)."""
    size = [max(1, round((hi - lo) * PROBE_SHARE ** (1 / len(box.lo)))) for lo, hi in zip(box.lo, box.hi, strict=True)]
    boxes = []
    for _ in range(PROBES):
        lo = [int(rng.integers(a, b - n + 1)) for a, b, n in zip(box.lo, box.hi, size, strict=True)]
        boxes.append(Box(tuple(lo), tuple(a + n for a, n in zip(lo, size, strict=True))))
    return boxes


def candidate_canvases(
    occlusion: str,
    image: torch.Tensor,
    foreground: torch.Tensor,
    occluded: torch.Tensor,
    root: Box,
    measure: Measures,
    *,
    band: float = 0.0,
    value: float = 0.0,
    context: torch.Tensor | None = None,
    seed: int = 0,
    order: tuple[str, ...] = AUTO_ORDER,
    full_check: FullCheck | None = None,
) -> Iterator[Canvas]:
    """The canvases to try for ``occlusion``, best first, each with its own outcome — lazily for ``auto``
    (`ordered_canvases` in ``order``), so a canvas is scored only when it is needed; a forced baseline is the
    only one. ``full_check``: a crop's search, whose canvases must remove the evidence from the full input too."""
    if occlusion == "auto":
        yield from ordered_canvases(image, occluded, root, measure, band=band, foreground=foreground, value=value,
                                    seed=seed, order=order, full_check=full_check)
        return
    canvas = removed(image, occlusion, where=occluded, value=value, foreground=foreground, context=context, seed=seed)
    score, ok, margin = measure(canvas)[0]
    on_full = _full_input(full_check, occlusion, margin, band)
    yield Canvas(occlusion, canvas[0], (score, ok), margin, on_full)


def reference_canvas(
    occlusion: str, image: torch.Tensor, measure: Measures, *, band: float, value: float = 0.0, seed: int = 0,
    order: tuple[str, ...] = AUTO_ORDER,
) -> tuple[str, torch.Tensor] | None:
    """The canvas occlusion ``auto`` would choose, to test an explanation built on a forced baseline against
    (certificate check ``minimal_on_reference``); None for ``auto`` itself (its canvas was chosen for not
    adding evidence), for a healthy ``context`` volume (the reference a user gave is the better one) and when
    the forced baseline is the one auto chooses."""
    if occlusion in ("auto", "context"):
        return None
    kind, canvas = auto_canvas(image, measure, band=band, value=value, seed=seed, order=order)
    return None if kind == occlusion else (kind, canvas)


def undecidable(occlusion: str, label: str, canvases: list[Canvas]) -> str:
    """Why no explanation can be found by occlusion when the best canvas (``canvases[0]``; the rest: every other
    one scored) does not remove the evidence (`Canvas.removes`): its fully occluded image still keeps the
    decision, or sits within the certificate's band of its threshold, on the image searched or, for a crop, on
    the full input (the canvases are ordered so, for auto: every one does). Said at once, after the probes,
    instead of after whole searches whose certificates must fail."""
    kinds = ", ".join(canvas.kind for canvas in canvases) if occlusion == "auto" else occlusion
    advice = ("so no part of the image can be shown responsible by occlusion — give a healthy reference volume with "
              "--occlusion PATH, or explain a smaller --region")
    only_crop = [canvas for canvas in canvases if canvas.on_full is not None]
    if only_crop:
        scores = "; ".join(f"{canvas.kind} {canvas.on_full[0]:.3f}, {canvas.outcome[0]:.3f} on the crop searched"
                           for canvas in only_crop)
        return (f"on the full input the fully occluded image does not lose '{label}' on any canvas tried ({kinds}; "
                f"{scores}): where the crop loses it, only because the crop leaves out the rest of the image (a "
                f"network that normalises each image decides from all of it), {advice}")
    state = "still gets" if canvases[0].outcome[1] else "stays at the threshold of"
    return (f"the fully occluded image {state} '{label}' on every canvas tried ({kinds}): the model decides this "
            f"without the image's content (a network that normalises each image can), {advice}")


def attempts(canvases: Iterator[Canvas], explain: Callable[[int, Canvas], Attempt], band: float = 0.0) -> list[Attempt]:
    """``explain(attempt, canvas)`` on each canvas in turn until a certificate does not fail, at most
    `MAX_AUTO_ATTEMPTS`. A retry never runs on a canvas whose fully occluded image fails to lose the decision by
    ``band``: its certificate must fail (``occluded_loses_decision``), so the whole search on it would be spent
    for nothing (the canvases come best first: every later one keeps the decision too)."""
    done: list[Attempt] = []
    for attempt, canvas in enumerate(itertools.islice(canvases, MAX_AUTO_ATTEMPTS)):
        if done and not canvas.removes(band):
            break
        done.append(explain(attempt, canvas))
        if done[-1].certificate.verdict != "fail":
            break
    return done


def best_attempt(done: list[Attempt]) -> tuple[Attempt, list[str], list[dict]]:
    """The attempt with the best verdict (the first among equals), a warning when there were several, and the
    record of what was tried (``details["occlusion_tried"]``)."""
    best = min(done, key=lambda attempt: VERDICT_ORDER.index(attempt.certificate.verdict))
    warnings = []
    if len(done) > 1:
        tried = ", ".join(f"{a.occlusion} ({a.certificate.verdict})" for a in done)
        warnings.append(f"occlusion auto tried {tried}: the first baseline's explanation failed its certificate")
    record = [{"occlusion": a.occlusion, "verdict": a.certificate.verdict, "reason": a.certificate.reason} for a in done]
    return best, warnings, record


__all__ = [
    "AUTO_ORDER",
    "MAX_AUTO_ATTEMPTS",
    "Attempt",
    "Canvas",
    "FullCheck",
    "attempts",
    "auto_canvas",
    "best_attempt",
    "candidate_canvases",
    "canvas_order",
    "occludable_region",
    "undecidable",
    "ordered_canvases",
    "reference_canvas",
    "scale_invariant",
]
