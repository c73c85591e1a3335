"""Can this explanation be trusted? A handful of forward passes that test it against the model itself.

Any map can be drawn; only the model can say whether it is true of the model. So every explanation, whatever
the method, is put to the model in one small batch of mutants, each the image with some voxels replaced by
the *canvas* (the fully occluded image the method worked with):

* ``map_ranks_voxels`` — the map is not flat or degenerate: the mean of its top 1% of the searched voxels is
  at least `MIN_CONTRAST` times the mean over them (a map with no contrast ranks nothing).
* ``sufficient_alone`` — the explanation alone, everything else of the searched region occluded, keeps the
  target decision (for methods without a sufficient explanation: the smallest top-ranked share of the map
  that keeps it, from `SHARES`).
* ``removal_loses_decision`` — the image with the explanation occluded (all disjoint explanations found, and
  the contrastive one: a minimal sufficient part of a lesion leaves the rest of it, which may still decide),
  or with as much again of the map's top occluded too, loses the decision. When neither does, the cause may
  be elsewhere as well: a *weak* certificate.
* ``controls_fail`` — `CONTROLS` control mutants that show as many voxels, in the explanation's own shape
  moved to where the map is lowest, must *not* keep the decision. A canvas that fakes evidence (an edge
  around every pasted box that the model reads as a feature) or a map that points at arbitrary tissue
  fails here: if the least responsible voxels do as well as the most responsible ones, the map means
  nothing.
* ``explanation_share`` — the explanation covers at most `MAX_SHARE` of the searched region: an
  "explanation" of most of the image explains nothing.
* ``occluded_loses_decision`` — the fully occluded image loses the decision: otherwise the model decides
  without the image's content and nothing in it can be a cause.
* ``minimal_on_reference`` — only when the explanation was built on a canvas the user forced and a reference
  canvas is given (the one occlusion ``auto`` would choose): the explanation's most responsible quarter
  (`REFERENCE_SHARE`), shown alone on the reference canvas, must *not* keep the decision. When it does, at
  least three quarters of the explanation are there because of the forced canvas, not because the model
  needs them (a ``min`` canvas around a sphere the trained CNN of bench/bench_causal.py reads: the model
  needs 5-20x the sphere's volume of surround to see it on black, and a quarter of that surround-and-sphere
  decides on the auto canvas). One pass.

Verdict: ``fail`` when any check whose failure makes the explanation meaningless fails (all but the removal
check, and the controls when half or more of them keep the decision), ``weak`` when only the removal check or
a minority of the controls fail, ``pass`` otherwise. The reason names the first failed check in words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .levels import level_thresholds
from .ops import bounding_box, dilate, foreground_mask
from .targets import outcomes

CONTROLS = 4
KEEP_MARGIN = 0.1
TOP_LEVEL_SHARE = 0.5
MAX_SHARE = 0.5
MIN_CONTRAST = 2.0
SHARES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5)
CONTROL_CANDIDATES = 256
REFERENCE_SHARE = 0.25


@dataclass(frozen=True)
class Check:
    """One test of the explanation against the model; ``severity`` is what its failure makes the verdict."""

    name: str
    value: float | None
    threshold: float | None
    passed: bool
    severity: str = "fail"
    failure: str = ""

    def to_dict(self) -> dict:
        value = None if self.value is None or not math.isfinite(self.value) else round(float(self.value), 6)
        return {"name": self.name, "value": value, "threshold": self.threshold, "passed": bool(self.passed)}


@dataclass(frozen=True)
class Certificate:
    """The verdict on an explanation (``pass`` | ``weak`` | ``fail``), why, and the checks behind it."""

    verdict: str
    reason: str
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "reason": self.reason, "checks": [check.to_dict() for check in self.checks]}


def certify(
    model,
    inputs: torch.Tensor,
    target,
    values: torch.Tensor,
    *,
    explanation: torch.Tensor | None = None,
    removal: torch.Tensor | None = None,
    baseline: torch.Tensor | None = None,
    searched: torch.Tensor | None = None,
    seed: int = 0,
    reference: tuple[str, torch.Tensor] | None = None,
    original: float | None = None,
    occluded: tuple[float, float] | None = None,
    alone: tuple[float, float] | None = None,
) -> Certificate:
    """Test an explanation against the model in at most ``len(SHARES) + CONTROLS + 5`` forward passes (one more
    with a ``reference`` canvas); what the caller already scored is not scored again (``original``, ``occluded``,
    ``alone``: a pass on HD-BET's full grid costs 40 s), and the grown removal only when the removal alone does
    not lose the decision.

    Args:
        model: the `LoadedModel` that was explained.
        inputs: (1, C, *S) prepared image (the model's grid).
        target: the resolved target (its ``passes`` rule is the decision).
        values: (*S) the map, higher = more responsible.
        explanation: (*S) bool sufficient explanation; None derives one from the map (`SHARES`).
        removal: (*S) bool voxels occluded by the removal check besides ``explanation``; pass the union of all
            disjoint explanations found and the contrastive one, so that a cause is removed whole.
        baseline: (C, *S) or (1, C, *S) what occluded voxels become (the method's own baseline or canvas);
            default 0, the normalised mean.
        searched: (*S) bool voxels that may be occluded; default the body (non-air) inside its bounding box.
        seed: draws of the control placements.
        reference: ``(name, canvas (C, *S))``: a canvas to test the explanation's minimality on, when it was built
            on another one (see ``minimal_on_reference``); None skips that check.
        original: the decision's margin (`Target.margin`) on ``inputs`` itself, when already known.
        occluded: (score, margin) of the fully occluded image (``searched`` all on ``baseline``), when known.
        alone: (score, margin) of ``explanation`` shown alone on ``baseline``, when known.
    """
    image = inputs[0].to(model.device).float()
    values = torch.as_tensor(values, device=image.device).float()
    if searched is None:
        foreground = foreground_mask(inputs.to(image.device))
        lo, hi = bounding_box(foreground)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        searched = torch.zeros_like(foreground)
        searched[box] = foreground[box]
    searched = searched.to(image.device).bool()
    fill = torch.zeros_like(image) if baseline is None else baseline.to(image.device).float().reshape(image.shape)
    canvas = torch.where(searched, fill, image)
    total = max(int(searched.sum()), 1)

    def outcomes(masks: Sequence[torch.Tensor], keep: bool, on: torch.Tensor | None = None) -> list[tuple[float, float]]:
        """(score, margin) of each mask shown alone (keep) or removed, on ``on`` (default the method's canvas)."""
        base = canvas if on is None else on
        results: list[tuple[float, float]] = []
        size = max(1, int(getattr(model, "batch_size", 4)))
        for start in range(0, len(masks), size):
            chunk = masks[start : start + size]
            shown = [torch.where(m, image, base) if keep else torch.where(m, base, image) for m in chunk]
            results.extend((score, margin) for score, _, margin in measured(model, target, torch.stack(shown)))
        return results

    checks = [_contrast_check(values, searched)]
    ranked = torch.where(searched, values, torch.full_like(values, -math.inf))
    if explanation is None or not bool(explanation.any()):
        explanation = _derived_explanation(ranked, total, lambda masks: [m >= 0 for _, m in outcomes(masks, True)])
    explanation = explanation.to(image.device).bool() & searched
    removal = explanation if removal is None else (removal.to(image.device).bool() & searched) | explanation
    controls = _controls(explanation, values, searched, seed)

    nothing = torch.zeros_like(searched)
    # one batch: whatever of the image, the explanation alone and the fully occluded image is not known yet, then
    # the controls
    unknown = [mask for mask, known in ((searched, original), (explanation, alone), (nothing, occluded))
               if known is None]
    scored = outcomes([*unknown, *controls], True)
    if original is None:
        original = scored.pop(0)[1]
    alone_score, alone = alone if alone is not None else scored.pop(0)
    occluded_score, occluded = occluded if occluded is not None else scored.pop(0)
    control_outcomes = scored
    # Every decision with a margin: kept means at least KEEP_MARGIN of the way from the threshold to the original
    # image's margin above it; lost, as far below. Between the two, a check is not passed either way.
    band = KEEP_MARGIN * max(original, 0.0)
    (removed_score, removed), = outcomes([removal], False)
    grown_score, grown_margin = removed_score, removed
    if removed > -band:  # as much again of the map's top removed too: the cause may be larger than found
        grown = _top_ranked(ranked, min(2 * int(removal.sum()), int(MAX_SHARE * total))) | removal
        (grown_score, grown_margin), = outcomes([grown], False)
    checks.append(Check("sufficient_alone", alone_score, None, alone >= band, "fail",
                        "the explanation alone does not keep the decision" if alone < 0 else
                        "the explanation alone keeps the decision only at the threshold (less than a tenth of the "
                        "way to the original score): a borderline explanation"))
    lost = removed <= -band or grown_margin <= -band
    checks.append(Check("removal_loses_decision", removed_score if removed <= -band else grown_score, None, lost,
                        "weak", "the decision survives with the explanation (and as much again of the "
                        "map's top) removed: the cause may lie elsewhere too"))
    checks.append(_moves_check(original, removed, band, "removal_moves_decision", ""))
    passing = [margin > -band for _, margin in control_outcomes]
    share = sum(passing) / len(passing) if passing else math.nan
    checks.append(Check(
        "controls_fail", share, 0.0, len(passing) == CONTROLS and share == 0.0,
        "fail" if not passing or share >= 0.5 else "weak",
        f"{sum(passing)} of {len(passing)} size-matched controls from the least responsible voxels do not clearly "
        "lose the decision (the occlusion may add evidence, or the map does not single out the cause)"
        if passing and sum(passing) else
        f"only {len(passing)} of {CONTROLS} size-matched controls fit the searched region",
    ))
    coverage = int(explanation.sum()) / total
    checks.append(Check("explanation_share", coverage, MAX_SHARE, 0 < coverage <= MAX_SHARE, "fail",
                        f"the explanation covers {coverage:.0%} of the searched region"))
    checks.append(Check("occluded_loses_decision", occluded_score, None, occluded <= -band, "fail",
                        "the fully occluded image keeps the decision (the model decides without the content)"
                        if occluded > 0 else "the fully occluded image sits at the decision's threshold: no "
                        "evidence can be told from none on this canvas"))
    checks.append(_top_level_check(values, searched, removal))
    if reference is not None:
        name, other = reference
        other_canvas = torch.where(searched, other.to(image.device).float().reshape(image.shape), image)
        (_, other_removed), = outcomes([removal], False, other_canvas)
        checks.append(_moves_check(original, other_removed, band, "removal_moves_decision_on_reference",
                                   f" on the {name} canvas"))
        quarter_size = int(REFERENCE_SHARE * int(explanation.sum()))
        if quarter_size:  # an explanation of fewer than 4 voxels has no smaller part to test
            quarter = _top_ranked(torch.where(explanation, values, torch.full_like(values, -math.inf)), quarter_size)
            (quarter_score, quarter_margin), = outcomes([quarter], True, other_canvas)
            checks.append(Check(
                "minimal_on_reference", quarter_score, None, quarter_margin < band, "fail",
                f"a quarter of the explanation alone keeps the decision on the {name} canvas: most of it is there "
                "because of the occlusion chosen, not because the model needs it (try --occlusion auto)",
            ))
    return _verdict(checks, len(passing))


def _moves_check(original: float, removed: float, band: float, name: str, where: str) -> Check:
    """Necessity on the real image: removing the explanation from the unoccluded image must move the decision by
    at least the margin band (a saturated model that does not notice the removal leaves it where it was)."""
    return Check(name, removed, None, removed <= original - band, "weak",
                 f"removing the explanation from the real image{where} does not move the decision: the model "
                 "decides from something else as well (or only)")


def _top_level_check(values: torch.Tensor, searched: torch.Tensor, explained: torch.Tensor) -> Check:
    """The map's top display level (`levels.level_thresholds`) lies mostly inside the explanations: a map whose
    most responsible voxels are elsewhere says something the explanations do not."""
    inside = values[searched]
    cuts = level_thresholds(inside.clamp_min(0).cpu().numpy())
    if not len(cuts):
        return Check("top_level_explained", None, TOP_LEVEL_SHARE, False, "weak", "the map has no display levels")
    top = searched & (values >= float(cuts[-1]))
    share = int((top & dilate(explained)).sum()) / max(int(top.sum()), 1)
    return Check("top_level_explained", share, TOP_LEVEL_SHARE, share >= TOP_LEVEL_SHARE, "weak",
                 f"{1 - share:.0%} of the map's top display level lies outside every explanation found: the map's "
                 "peak and the explanation disagree")


def measured(model, target, batch: torch.Tensor) -> list[tuple[float, bool, float]]:
    """(target score, decision holds, margin) of each sample of a (B, C, *S) batch (`Target.margin`): what every
    mutant is judged by. A model that scores mutants with others' (``measure_target``: one target's view in
    ``--target all``, `causal.finish_together`) is asked instead."""
    shared = getattr(model, "measure_target", None)
    if shared is not None:
        return shared(target, batch)
    box = getattr(target, "box", None)  # a region target reads only its box: the model computes only that
    with torch.no_grad():
        scored = model.predict(batch, box=box, reduce=lambda probs: outcomes(target, probs))
    return [(float(score), bool(ok), float(margin)) for score, ok, margin in scored.cpu().tolist()]


def decisions(model, target, batch: torch.Tensor) -> list[tuple[float, bool]]:
    """(target score, decision holds) of each sample of a (B, C, *S) batch (`measured` without the margin)."""
    return [(score, ok) for score, ok, _ in measured(model, target, batch)]


def _verdict(checks: list[Check], controls: int) -> Certificate:
    failed = [check for check in checks if not check.passed]
    if any(check.severity == "fail" for check in failed):
        verdict = "fail"
        # a canvas that does not remove the evidence makes every other check vacuous (everything shown "keeps"
        # the decision, controls too): that is the reason to give, not its symptoms
        root = [check for check in failed if check.name == "occluded_loses_decision"]
        reason = (root or [check for check in failed if check.severity == "fail"])[0].failure
    elif failed:
        verdict, reason = "weak", failed[0].failure
    else:
        verdict = "pass"
        reason = (
            f"the explanation alone keeps the decision, removing it loses it, and {controls} size-matched "
            "controls from the least responsible voxels do not keep it"
        )
    return Certificate(verdict, reason, checks)


def _contrast_check(values: torch.Tensor, searched: torch.Tensor) -> Check:
    inside = values[searched].clamp_min(0)
    finite = bool(torch.isfinite(inside).all())
    mean = float(inside.mean()) if inside.numel() and finite else 0.0
    if mean <= 0:
        return Check("map_ranks_voxels", None, MIN_CONTRAST, False, "fail",
                     "the map is flat or has no positive value in the searched region")
    top = max(1, inside.numel() // 100)
    contrast = float(inside.topk(top).values.mean()) / mean
    return Check("map_ranks_voxels", contrast, MIN_CONTRAST, contrast >= MIN_CONTRAST, "fail",
                 f"the map is nearly flat (its top 1% is {contrast:.2f}x its mean)")


def _top_ranked(ranked: torch.Tensor, count: int) -> torch.Tensor:
    """The ``count`` highest voxels of ``ranked`` (voxels outside the searched region are -inf, never taken)."""
    order = torch.argsort(ranked.flatten(), descending=True)
    mask = torch.zeros(ranked.numel(), dtype=torch.bool, device=ranked.device)
    mask[order[: max(1, count)]] = True
    return mask.view_as(ranked) & torch.isfinite(ranked)


def _derived_explanation(ranked: torch.Tensor, total: int, keeps) -> torch.Tensor:
    """The smallest top-ranked share of the map (`SHARES`) that keeps the decision; the largest if none does."""
    masks = [_top_ranked(ranked, int(round(share * total))) for share in SHARES]
    kept = keeps(masks)
    return next((mask for mask, ok in zip(masks, kept, strict=True) if ok), masks[-1])


def _controls(explanation: torch.Tensor, values: torch.Tensor, searched: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """`CONTROLS` copies of the explanation's shape moved inside the searched region, away from it, where the
    map is lowest (fewer when the shape does not fit)."""
    if not bool(explanation.any()):
        return []
    coords = explanation.nonzero()
    low, high = coords.min(0).values, coords.max(0).values + 1
    region = searched.nonzero()
    region_low, region_high = region.min(0).values, region.max(0).values + 1
    shape = explanation[tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))]
    size = high - low
    room = region_high - region_low - size
    rng = np.random.default_rng(seed)
    guard = dilate(explanation)
    count = int(explanation.sum())
    if bool((room < 0).any()):
        return _compact_controls(CONTROLS, count, values, searched & ~guard, [], rng)

    def placed(start: list[int]) -> torch.Tensor:
        mask = torch.zeros_like(explanation)
        mask[tuple(slice(a, a + int(n)) for a, n in zip(start, size, strict=True))] = shape
        return mask

    # Only the placements are kept (a full mask per candidate cost 0.5 GB at 128^3); masks are rebuilt for the
    # chosen ones.
    candidates: list[tuple[float, list[int]]] = []
    for _ in range(CONTROL_CANDIDATES):
        start = [int(rng.integers(int(a), int(a) + int(r) + 1)) for a, r in zip(region_low, room, strict=True)]
        mask = placed(start)
        if bool((mask & guard).any()) or int((mask & searched).sum()) < 0.9 * count:
            continue
        candidates.append((float(values[mask].mean()), start))
    candidates.sort(key=lambda item: item[0])
    chosen: list[torch.Tensor] = []
    for _, start in candidates:
        mask = placed(start) & searched
        if all(not bool((mask & other).any()) for other in chosen) or len(candidates) < 2 * CONTROLS:
            chosen.append(mask)
        if len(chosen) == CONTROLS:
            break
    return chosen + _compact_controls(CONTROLS - len(chosen), count, values, searched & ~guard, chosen, rng)


def _compact_controls(wanted: int, count: int, values: torch.Tensor, free: torch.Tensor,
                      taken: list[torch.Tensor], rng: np.random.Generator) -> list[torch.Tensor]:
    """``wanted`` more controls of ``count`` voxels when the explanation's own shape does not fit often enough (a
    sprawling explanation in a large image): compact blobs of ``free`` voxels around centres where the map is
    lowest, so that every certificate rests on `CONTROLS` controls at any size."""
    chosen: list[torch.Tensor] = []
    for mask in taken:
        free = free & ~mask
    spots = free.nonzero()
    if wanted <= 0 or len(spots) < count:
        return chosen
    draws = rng.choice(len(spots), size=min(len(spots), CONTROL_CANDIDATES), replace=False)
    picks = spots[torch.from_numpy(draws).to(spots.device)]
    picks = picks[torch.argsort(values[tuple(picks.T)], stable=True)]
    for centre in picks:
        if not bool(free[tuple(centre)]):
            continue
        side = max(1, math.ceil(count ** (1 / free.ndim)))
        while True:
            window = tuple(slice(max(0, int(c) - side), int(c) + side + 1) for c in centre)
            inside = free[window]
            if int(inside.sum()) >= count or all(w.start == 0 and w.stop >= n for w, n in zip(window, free.shape, strict=True)):
                break
            side *= 2
        offsets = inside.nonzero()
        if len(offsets) < count:
            continue
        corner = torch.tensor([w.start for w in window], device=free.device)
        distance = ((offsets + corner - centre) ** 2).sum(1)
        nearest = offsets[torch.argsort(distance, stable=True)[:count]]
        mask = torch.zeros_like(free)
        mask[tuple((nearest + corner).T)] = True
        chosen.append(mask)
        free = free & ~mask
        if len(chosen) == wanted:
            break
    return chosen
