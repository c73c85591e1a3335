"""Context crops: a whole-image segmenter explained on a crop around its target region, certified on the full image.

A region target reads the model's output in one region. A sliding-window model computes that region from the
windows around it only (`voxcause.models.windows`, exact). A whole-image model — one forward pass over the whole
grid, e.g. HD-BET at 37 s a pass on this CPU — may still depend mostly on the neighbourhood: a U-Net's receptive
field is finite, but InstanceNorm layers and padding make every voxel count a little. So the crop is *checked*:
`find_context_crop` grows a box around the region (margins of `FIRST_MARGIN`, doubling, edges rounded to a
multiple of `DIVISOR` for U-Nets) until the crop's region score matches the full image's within `TOLERANCE`
(and both hold or both lose the decision). The search then runs on the crop (its root box is the crop), a pass
costing the crop's size; the crop, its size and the agreement go into summary.json (``crop``).

Nothing certified rests on the crop alone: `certify_on_full` scores the certificate's checks on the full model
input — the explanation kept alone with the rest of the body occluded on the same kind of canvas, removed from
the real image, size-matched controls — so a certified explanation is true of the model as the user runs it.
The crop's own certificate (the search's canvas retries use it) is kept beside it as ``certificate_on_crop``.
A canvas must remove the evidence from the full input too: `FullInputCanvasCheck` scores each canvas whose fully
occluded crop loses the decision on the full input before the search (one full pass per canvas, every target at
once), so a canvas that works only on the crop is passed over, and a run whose every canvas is such fails at once.
The crop's model is not the full one: an explanation found on the crop keeps the decision there by the
certificate's margin, and on the full input it may fall just short (the sample segmenter: 0.514 on the full
input against 0.519 needed). `hold_on_full` grows it along the map's ranking, on the full input, until it keeps
the decision there by the same margin (O(log n) full passes; the voxels added go into ``crop.grown_on_full``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .causal.auto import occludable_region
from .causal.multi import measured_all, union_box
from .causal.mutants import MutantScorer
from .causal.search import rank_voxels, smallest_passing
from .certificate import KEEP_MARGIN, certify, measured
from .explanation import Attribution
from .removal import canvas
from .targets import RegionTarget

TOLERANCE = 0.02  # the crop's region score may differ from the full image's by this much (probability)
FIRST_MARGIN = 16  # voxels around the region's box in the first crop tried; doubled until it agrees
DIVISOR = 16  # crop edges are multiples of this where the image allows (U-Nets halve each axis up to 4 times)
# a crop holding more of the grid than this saves less than half a pass, and its model is not the full one: none is
# used (HD-BET's ensemble, cortex cube: the 48^3 and 80^3 crops disagree, the next holds 99% of the grid)
MAX_SHARE = 0.5
CROPPED_METHODS = ("rex",)  # methods whose cost is many forward passes: the ones a crop pays for


@dataclass
class ContextCrop:
    """``box`` (spatial slices of the model grid) whose region score agrees with the full image's."""

    box: tuple[slice, ...]
    full_score: float
    crop_score: float
    shape: tuple[int, ...]
    tried: list[dict] = field(default_factory=list)
    passes: int = 0  # forward passes spent finding the crop (one per crop tried, each the size of that crop)
    outcome: tuple[float, bool, float] | None = None  # (score, holds, margin) on the crop, the worst target's

    def target(self, target: RegionTarget) -> RegionTarget:
        """The target on the crop: the region cut to the box, the decision still judged against the full
        image's score (the user's decision)."""
        cropped = RegionTarget(target.index, target.label, target.region[self.box], single_logit=target.single_logit,
                               pass_fraction=target.pass_fraction)
        cropped.reference_score = target.reference_score
        return cropped

    def cut(self, volume: torch.Tensor) -> torch.Tensor:
        """(1, C, *S) -> (1, C, *box)."""
        return volume[(slice(None), slice(None), *self.box)].contiguous()

    def paste(self, values: torch.Tensor) -> torch.Tensor:
        """(*box) map or mask -> (*S), zero (or False) outside the crop: nothing outside it was searched."""
        full = torch.zeros(self.shape, dtype=values.dtype, device=values.device)
        full[self.box] = values
        return full

    def restore(self, attribution: Attribution) -> Attribution:
        """The crop's attribution on the full grid; its certificate (of the crop) moves to ``details['crop']``."""
        details = {
            key: self.paste(value) if isinstance(value, torch.Tensor) and tuple(value.shape) == self.size else value
            for key, value in attribution.details.items()
        }
        details["crop"] = {**self.describe(), "certificate_on_crop": attribution.certificate}
        stats = dict(attribution.stats)
        if "searched_box" in stats:  # the search's root box, in the full grid's coordinates
            offsets = [s.start for s in self.box]
            stats["searched_box"] = {
                end: [int(v) + o for v, o in zip(stats["searched_box"][end], offsets, strict=True)] for end in ("lo", "hi")
            }
        return Attribution(
            map=self.paste(attribution.map),
            masks={name: self.paste(mask) for name, mask in attribution.masks.items()},
            stats=stats,
            details=details,
            certificate=None,
        )

    @property
    def size(self) -> tuple[int, ...]:
        return tuple(s.stop - s.start for s in self.box)

    def describe(self) -> dict:
        """What summary.json records: the box, its size and share of the grid, and the agreement."""
        voxels = 1
        for n in self.size:
            voxels *= n
        total = 1
        for n in self.shape:
            total *= n
        return {
            "lo": [s.start for s in self.box],
            "hi": [s.stop for s in self.box],
            "size": list(self.size),
            "share_of_grid": voxels / total,
            "full_score": self.full_score,
            "crop_score": self.crop_score,
            "agreement": abs(self.full_score - self.crop_score),
            "tolerance": TOLERANCE,
            "tried": self.tried,
            "passes": self.passes,
        }


def find_context_crop(model, inputs: torch.Tensor, target, method: str, probs: torch.Tensor) -> ContextCrop | None:
    """The smallest crop (margins `FIRST_MARGIN`, 2x, 4x, ...) whose region score agrees with the full image's,
    ``probs`` (1, K, *S): the model's prediction on the full ``inputs``.

    None when no crop applies: not a region target, a method that is not `CROPPED_METHODS`, a sliding-window
    model (it already runs only the region's windows, exactly), or no crop of at most `MAX_SHARE` of the grid
    agrees. Costs one forward pass per crop tried, each the size of that crop.
    """
    if not isinstance(target, RegionTarget) or not _croppable(model, method):
        return None
    return _grow_until_agreed(inputs, target.box, [target], probs,
                              lambda crop: [measured(model, crop.target(target), crop.cut(inputs))[0]])


def find_shared_crop(model, inputs: torch.Tensor, targets: list[RegionTarget], method: str,
                     probs: torch.Tensor) -> ContextCrop | None:
    """`find_context_crop` for several targets searched together (``--target all``, `causal.multi`): the smallest
    crop around the union of their regions on which every target's region score agrees with the full image's
    (one pass per crop tried scores them all); ``full_score``/``crop_score`` are the worst-agreeing target's."""
    if not _croppable(model, method):
        return None
    return _grow_until_agreed(inputs, union_box(targets), targets, probs,
                              lambda crop: measured_all(model, [crop.target(t) for t in targets], crop.cut(inputs))[0])


def _croppable(model, method: str) -> bool:
    """A method a crop pays for, on a whole-image model (a sliding-window one already runs only the region's
    windows, exactly)."""
    return method in CROPPED_METHODS and getattr(model, "sliding_window", None) is None


def _grow_until_agreed(inputs: torch.Tensor, anchor: tuple[slice, ...], targets: list[RegionTarget],
                       probs: torch.Tensor,
                       score: Callable[[ContextCrop], list[tuple[float, bool, float]]]) -> ContextCrop | None:
    """Grow a crop around ``anchor`` (margins `FIRST_MARGIN`, doubling) until every target's region score on it,
    ``score(crop)`` (one pass: (score, holds, margin) per target), is within `TOLERANCE` of the full image's and
    holds or loses the decision as the full image does; None past `MAX_SHARE` of the grid, or for a model that
    takes only its own input size. The crop keeps the worst-agreeing target's scores and outcome."""
    shape = tuple(int(s) for s in inputs.shape[2:])
    full = [(float(t.score(probs)[0]), bool(t.passes(probs)[0])) for t in targets]
    tried: list[dict] = []
    margin = FIRST_MARGIN
    while True:
        box = _grown(anchor, margin, shape)
        if _share(box, shape) > MAX_SHARE:
            return None
        crop = ContextCrop(box, 0.0, 0.0, shape, tried)
        try:
            scored = score(crop)
        except Exception as error:  # a model that takes only its own input size: no crop, the full image
            tried.append({"size": list(crop.size), "error": type(error).__name__})
            return None
        gaps = [abs(outcome[0] - whole) for outcome, (whole, _) in zip(scored, full, strict=True)]
        worst = max(range(len(targets)), key=gaps.__getitem__)
        tried.append({"size": list(crop.size), "score": scored[worst][0]})
        agreed = all(outcome[1] == whole_ok for outcome, (_, whole_ok) in zip(scored, full, strict=True))
        if gaps[worst] <= TOLERANCE and agreed:
            crop.full_score, crop.crop_score, crop.outcome = full[worst][0], scored[worst][0], scored[worst]
            crop.passes = len(tried)
            return crop
        margin *= 2


def _share(box: tuple[slice, ...], shape: tuple[int, ...]) -> float:
    """The share of a grid of ``shape`` that ``box`` holds."""
    share = 1.0
    for s, n in zip(box, shape, strict=True):
        share *= (s.stop - s.start) / n
    return share


def _grown(box: tuple[slice, ...], margin: int, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """``box`` grown by ``margin`` voxels each side, its edges rounded up to a multiple of `DIVISOR`, shifted
    back inside the grid (clipped to it when larger)."""
    grown = []
    for s, n in zip(box, shape, strict=True):
        size = s.stop - s.start + 2 * margin
        size = min(n, -(-size // DIVISOR) * DIVISOR)
        start = max(0, min(s.start - (size - (s.stop - s.start)) // 2, n - size))
        grown.append(slice(start, start + size))
    return tuple(grown)


class FullInputCanvasCheck:
    """Whether a canvas the crop's search could use removes the evidence from the **full** input: one full pass
    per canvas kind, scored for every target at once (``--target all``), remembered per kind.

    A crop leaves out the rest of the image, so a canvas that removes the evidence on the crop may not on the full
    input: HD-BET's cortex region scores 0.050 with the crop fully occluded by ``shuffle``, 0.496 with the whole
    head occluded (threshold 0.449) — InstanceNorm reads the whole image. The full-input certificate would then
    fail (``occluded_loses_decision``; its controls keep the decision too) after ~1,200 crop passes. So occlusion
    ``auto`` asks this of every canvas whose fully occluded crop loses the decision, before its probes
    (`causal.auto.ordered_canvases`): such a canvas is ranked as one that keeps the decision, and the next is
    tried. Occluded as `certify_on_full` occludes, so the certificate's own check gives the same answer."""

    def __init__(self, model, inputs: torch.Tensor, targets: list[RegionTarget], probs: torch.Tensor, *,
                 seed: int = 0, value: float = 0.0, context: torch.Tensor | None = None) -> None:
        self.model, self.inputs, self.targets = model, inputs, targets
        self.seed, self.value, self.context = seed, value, context
        self.foreground, _, self.occluded = occludable_region(inputs)
        self.bands = [KEEP_MARGIN * max(float(target.margin(probs)[0]), 0.0) for target in targets]
        self.scored: dict[str, list[tuple[float, float]]] = {}  # kind -> each target's (score, margin)

    def outcomes(self, kind: str) -> list[tuple[float, float] | None]:
        """Per target: None when the full input, occluded on ``kind``, loses the decision by the certificate's
        margin, else its (score, margin). One full pass for all targets, the first time ``kind`` is asked."""
        if kind not in self.scored:
            baseline = canvas(self.inputs, kind, value=self.value, foreground=self.foreground, context=self.context,
                              seed=self.seed)
            filled = torch.where(self.occluded, baseline.reshape(self.inputs.shape).to(self.inputs.device), self.inputs)
            (scored,) = measured_all(self.model, self.targets, filled)
            self.scored[kind] = [(score, margin) for score, _, margin in scored]
        return [None if margin <= -band else (score, margin)
                for (score, margin), band in zip(self.scored[kind], self.bands, strict=True)]

    def known(self, kind: str, index: int) -> tuple[float, float] | None:
        """Target ``index``'s (score, margin) with the full input occluded on ``kind``, if already scored."""
        return self.scored[kind][index] if kind in self.scored else None

    def record(self, index: int, details: dict) -> None:
        """Into a crop's ``details['crop']`` (summary.json ``crop``): target ``index``'s fully occluded score on
        the full input per canvas checked (``canvases_on_full``), and their passes in ``passes_on_full``."""
        details["canvases_on_full"] = {kind: scores[index][0] for kind, scores in self.scored.items()}
        details["passes_on_full"] = details.get("passes_on_full", 0) + len(self.scored)

    def of(self, index: int) -> Callable[[str], tuple[float, float] | None]:
        """The check of target ``index`` alone: ``check(kind)`` -> None or its (score, margin)."""
        return lambda kind: self.outcomes(kind)[index]


def certify_on_full(
    model,
    inputs: torch.Tensor,
    target,
    attribution: Attribution,
    *,
    probs: torch.Tensor,
    seed: int = 0,
    value: float = 0.0,
    context: torch.Tensor | None = None,
    occluded_outcome: tuple[float, float] | None = None,
) -> dict:
    """The certificate of a crop's explanation, every check scored on the full model input ``inputs``, whose
    prediction ``probs`` (1, K, *S) the run already has (a full pass is what a crop saves: 40 s on HD-BET).

    The canvas is the kind the search used on the crop (``stats['occlusion_used']``; ``value`` for constant,
    the full ``context`` volume for context), built on the full image; the removal check removes every
    explanation found (the disjoint ones and the contrastive one), as the causal engine's own certificate does.
    ``occluded_outcome``: the fully occluded full input's (score, margin) on that canvas when the run has it
    (`FullInputCanvasCheck`): not scored again.
    """
    foreground, _, occluded = occludable_region(inputs)
    kind = attribution.stats.get("occlusion_used", "constant")
    baseline = canvas(inputs, kind, value=value, foreground=foreground, context=context, seed=seed)
    original = float(target.margin(probs)[0])
    passes = model.forward_passes
    alone = hold_on_full(model, inputs, target, attribution, baseline, occluded, original)
    masks = attribution.masks
    union = None
    for name, mask in masks.items():
        if name.startswith("multiple_") or name == "contrastive":
            union = mask if union is None else union | mask
    certificate = certify(
        model, inputs, target, attribution.map, explanation=masks.get("sufficient"), removal=union,
        baseline=baseline, searched=occluded, seed=seed, original=original, alone=alone, occluded=occluded_outcome,
    ).to_dict()
    if isinstance(attribution.details.get("crop"), dict):  # the full-size passes: what a crop cannot make cheap
        attribution.details["crop"]["passes_on_full"] = model.forward_passes - passes
    return certificate


def hold_on_full(
    model, inputs: torch.Tensor, target, attribution: Attribution, baseline: torch.Tensor, occluded: torch.Tensor,
    original: float,
) -> tuple[float, float] | None:
    """Grow the sufficient explanation (in place) by the next most responsible ``occluded`` voxels until, shown
    alone on ``baseline``, it keeps the decision on the full input ``inputs`` by the certificate's margin
    (`certificate.KEEP_MARGIN` of ``original``, the image's own margin); ``details['crop']['grown_on_full']``
    says by how many voxels. Left as found when even every voxel does not (the certificate then says so).

    Returns the (score, margin) of the sufficient explanation as it is left, shown alone (the certificate's
    ``sufficient_alone`` needs no pass of its own), or None when there is none."""
    sufficient = attribution.masks.get("sufficient")
    if sufficient is None or not bool(sufficient.any()):
        return None
    sufficient = sufficient.to(inputs.device)
    scorer = MutantScorer(model, target, inputs)  # mask mutants held to the band, as the search's own
    scorer.set_canvas(baseline[0])
    scorer.band = KEEP_MARGIN * max(original, 0.0)
    rank, total = rank_voxels(attribution.map.to(inputs.device).float(), occluded.to(inputs.device) & ~sufficient)
    scores: dict[int, tuple[float, float]] = {}

    def shown(n: int) -> torch.Tensor:
        return sufficient | ((rank >= 0) & (rank < n))

    def keeps(ns: list[int]) -> list[bool]:
        outcomes = scorer.measure_masks([shown(n) for n in ns])
        scores.update((n, (score, margin)) for n, (score, _, margin) in zip(ns, outcomes, strict=True))
        return [kept for _, kept, _ in outcomes]

    added = 0 if keeps([0])[0] else smallest_passing(keeps, total)
    if added is None:
        return scores[0]
    if added:
        grown = shown(added)
        details = attribution.details.get("sufficient")
        if isinstance(details, dict) and details.get("voxels"):
            voxels = int(grown.sum())
            attribution.details["sufficient"] = {**details, "voxels": voxels, "score": scores[added][0],
                                                 "fraction": details["fraction"] * voxels / details["voxels"]}
        attribution.masks["sufficient"] = grown.to(attribution.masks["sufficient"].device)
    if isinstance(attribution.details.get("crop"), dict):
        attribution.details["crop"]["grown_on_full"] = added
    return scores[added]
