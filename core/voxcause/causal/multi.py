"""One search for several targets (``--target all``): every label of a segmentation from shared mutants.

A segmenter's forward pass gives every label at once, so a mutant scored for one label is scored for all of
them. `explain_targets` runs one `PartitionSearch` per target (same options, same seed: the same random
partitions) as coroutines (`PartitionSearch.steps`) and scores their requests together, round by round
(`run_together`, each round the same number of mutants from every search, so they keep pace): each mutant's
outcome is a vector, one (score, decision holds) per target, and each search credits responsibility from its
own entry. Two ways make one model pass serve several searches (`pack`):

* **identical mutants** are scored once: the root's partition is the same for every target, so its subsets
  are shared outright; every image scored is kept, and answers a mutant it showed for any search that asks
  for it later, where that mutant would have fitted the image;
* **independent mutants** are shown in one image: searches that refine different boxes (each label's cause
  in its own place) have mutants that show none of the voxels the other hides in its box being split, so both
  are pasted into the same image, and inside each split box the image is exactly that search's own mutant. Where the model
  says which input a target's output depends on (`mutants.reach`: a sliding-window model's windows), boxes
  outside it do not count, as they change nothing for that target. Elsewhere the other search's boxes are
  visible too; a label's decision that depended on them would be misjudged, so the
  shared search is only a way to find the ranking: every explanation is extracted and certified on its own
  target's mutants (`CausalResponsibility.finish`), and a target whose certificate fails, or for which the
  shared canvas does not remove the evidence cleanly, is explained again on its own
  (`CausalResponsibility._attribute`, with its own canvas choice and retries).

The canvas is shared too (one set of probe passes for all targets, `shared_canvas`): the first of the model's
`auto.canvas_order` (shuffle first for a network that normalises its input) that is clean for every target, else
the one clean for most.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Collection, Generator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..certificate import KEEP_MARGIN
from ..errors import ErrorCode, InputError
from ..explanation import Attribution
from ..removal import canvas as removed
from ..targets import RegionTarget, outcomes
from ..typing import Progress
from .auto import AUTO_ORDER, FAKING_SHARE, Attempt, Canvas, canvas_order, occludable_region, probe_boxes, probe_mutants
from .explainer import part_floor
from .finish_together import TargetView, finish_together
from .mutants import MutantScorer, Outcome, peak_memory_mb, reach
from .partition import Box, unseen
from .responsibility import Request

Found = tuple[torch.Tensor, dict, int, dict]
# A crop's shared search asks this of a canvas kind (`crop.FullInputCanvasCheck.outcomes`): per target, None when
# the full input occluded on it loses the decision too, else the full input's (score, margin).
FullChecks = Callable[[str], "list[tuple[float, float] | None]"]
SHARED_METHODS = ("rex",)  # the methods ``target="all"`` runs: one shared causal search


def union_box(targets: Sequence[RegionTarget]) -> tuple[slice, ...]:
    """The bounding box of every target's region box: all of the output the targets read."""
    return _bounding([target.box for target in targets])


def _bounding(boxes: Sequence[tuple[slice, ...]]) -> tuple[slice, ...]:
    """The smallest box of slices holding every one of ``boxes``."""
    return tuple(slice(min(b[axis].start for b in boxes), max(b[axis].stop for b in boxes))
                 for axis in range(len(boxes[0])))


def measured_all(model, targets: Sequence[RegionTarget], batch: torch.Tensor) -> list[list[tuple[float, bool, float]]]:
    """(score, decision holds, margin) of every target for each sample of a (B, C, *S) batch, from one pass of
    each sample (the model computes only the targets' union box, `certificate.measured` for one target)."""
    box = union_box(targets)
    within = [dataclasses.replace(target, region=target.region[box]) for target in targets]

    def reduce(probs: torch.Tensor) -> torch.Tensor:
        return torch.stack([outcomes(t, probs) for t in within], 1)  # (B, T, 3)

    with torch.no_grad():
        scored = model.predict(batch, box=box, reduce=reduce)
    return [[(float(s), bool(ok), float(m)) for s, ok, m in sample] for sample in scored.cpu().tolist()]


class SharedScorer(MutantScorer):
    """A `MutantScorer` whose outcomes are vectors: ``score`` gives each sample a list of (score, decision holds),
    one per target, and ``measure`` one (score, holds, margin) per target."""

    def __init__(self, model, targets: Sequence[RegionTarget], image: torch.Tensor) -> None:
        super().__init__(model, targets[0], image)
        self.targets = list(targets)

    def score(self, batch: torch.Tensor) -> list[list[Outcome]]:  # type: ignore[override]
        return [[(score, ok) for score, ok, _ in sample] for sample in self.measure_all(batch)]

    def measure_all(self, batch: torch.Tensor) -> list[list[tuple[float, bool, float]]]:
        return measured_all(self.model, self.targets, batch)


@dataclass
class _Mutant:
    """One image scored for several searches: ``owners`` maps a search to the index of its request it answers;
    ``members`` holds each distinct request's asker, shown boxes and split box."""

    contexts: list[Box] = field(default_factory=list)
    visible: list[Box] = field(default_factory=list)
    owners: dict[int, int] = field(default_factory=dict)
    members: list[tuple[int, frozenset, Box]] = field(default_factory=list)


def _disturbs(shown: frozenset, split: Box, own: frozenset, reach: Box | None) -> bool:
    """Whether boxes ``shown`` by another search change what a search splitting ``split`` while showing ``own``
    is told: they show voxels of its split box, where its own mutants differ, that it hides itself
    (`partition.unseen`) — unless its target cannot see them (outside its ``reach``, the input its target's
    output depends on, where the model says so: then they change nothing at all)."""
    seen = split if reach is None else split.meet(reach)
    return seen is not None and not unseen(shown, seen, own)


def _fits(mutant: _Mutant, search: int, shown: frozenset, split: Box, reaches: dict[int, Box | None]) -> bool:
    """Whether ``search``'s mutant showing ``shown`` while splitting ``split`` can share ``mutant``'s image: it is
    the same mutant, or neither disturbs the other (`_disturbs`): inside each split box, the image is exactly
    that search's own mutant."""
    for other, other_shown, other_split in mutant.members:
        if other_shown == shown:
            continue
        if (_disturbs(shown, other_split, other_shown, reaches.get(other))
                or _disturbs(other_shown, split, shown, reaches.get(search))):
            return False
    return True


def pack(requests: dict[int, Request], known: dict[frozenset, list[tuple[_Mutant, list[Outcome]]]],
         reaches: dict[int, Box | None] | None = None, opening: Collection[int] | None = None,
         ) -> tuple[list[_Mutant], dict]:
    """The images that answer every search's request (search index -> `Request`), first fit, in search order: a
    mutant joins an image that does not yet answer its search and that it fits (`_fits`; ``reaches``: each
    search's target's `mutants.reach` as a box, None or absent where every voxel can matter). An image scored
    before (``known``: shown boxes -> the images that showed them, with every target's outcome) answers a mutant
    it showed and would have fitted, without a pass; those answers are returned as {(search, index): outcome
    vector}. Only the searches in ``opening`` (default: every one) open images of their own; another's mutant
    that fits none is left out (neither scored nor answered)."""
    reaches = reaches or {}
    mutants: list[_Mutant] = []
    answered: dict[tuple[int, int], list[Outcome]] = {}
    for search, request in requests.items():
        for index, (context, visible, split) in enumerate(
                zip(request.contexts, request.visible, request.boxes, strict=True)):
            shown = frozenset((*context, *visible))
            reused = next((vector for image, vector in known.get(shown, ())
                           if _fits(image, search, shown, split, reaches)), None)
            if reused is not None:
                answered[(search, index)] = reused
                continue
            host = next((m for m in mutants if search not in m.owners and _fits(m, search, shown, split, reaches)),
                        None)
            if host is None:
                if opening is not None and search not in opening:
                    continue
                host = _Mutant()
                mutants.append(host)
            host.owners[search] = index
            if all(other != shown for _, other, _ in host.members):
                host.contexts.extend(context)
                host.visible.extend(visible)
            host.members.append((search, shown, split))
    return mutants, answered


@dataclass
class _Open:
    """A search's open request and the outcomes of its mutants answered so far (mutant index -> outcome)."""

    request: Request
    outcomes: dict[int, Outcome] = field(default_factory=dict)

    def waiting(self) -> list[int]:
        """The indices of the mutants not answered yet, in order."""
        return [index for index in range(len(self.request.contexts)) if index not in self.outcomes]


def run_together(steps: list[Generator[Request, list[Outcome], Found]], scorer: SharedScorer,
                 reaches: dict[int, Box | None] | None = None) -> tuple[list[Found], dict]:
    """Drive the searches' coroutines to their ends, scoring their requests together, round by round (`pack`,
    with each search's ``reaches``): the results, and how many mutants the searches asked for and how many
    images scored them.

    A round opens as many images as the smallest request still open has left, so a search asking for few
    mutants per level advances several levels while a large request is answered over several rounds: the
    searches move at about the same pace in mutants. The run costs at least the images of its dearest search,
    so the images are opened by the lead search (the one with the most mutants answered so far, the likeliest
    to be the dearest) and every other search offers all its waiting mutants to ride in them, each in the
    first image it fits; a mutant that fits none waits for the next round, where the lead has moved on
    to other boxes, and a search none of whose mutants fitted in a round opens that many images of its own in
    the next (no search stalls). Every image is scored for every target and kept (`pack`'s ``known``), so a mutant that an image
    showed answers every search that asks for it later where it would have fitted that image (the root's
    subsets: the same partitions for all targets)."""
    results: list[Found | None] = [None] * len(steps)
    pending: dict[int, _Open] = {}
    known: dict[frozenset, list[tuple[_Mutant, list[Outcome]]]] = {}
    asked = [0] * len(steps)
    stalled = [False] * len(steps)  # no mutant of the search was answered last round

    def advance(search: int, outcomes: list[Outcome] | None) -> None:
        try:
            request = next(steps[search]) if outcomes is None else steps[search].send(outcomes)
        except StopIteration as done:
            results[search] = done.value
            pending.pop(search, None)
            return
        pending[search] = _Open(request)
        asked[search] += len(request.contexts)

    for search in range(len(steps)):
        advance(search, None)
    scored = 0
    while pending:
        step = min(len(state.waiting()) for state in pending.values())
        lead = max(pending, key=lambda search: (asked[search] - len(pending[search].waiting()), -search))
        order = [lead, *(search for search in pending if search != lead)]
        opening = {search for search in order if search == lead or stalled[search]}
        offered = {search: state.waiting()[:step] if search in opening else state.waiting()
                   for search, state in pending.items()}
        served = {search: _subset(pending[search].request, offered[search]) for search in order}
        mutants, answered = pack(served, known, reaches, opening)
        vectors = scorer.boxes([tuple(m.contexts) for m in mutants], [m.visible for m in mutants]) if mutants else []
        scored += len(mutants)
        for mutant, vector in zip(mutants, vectors, strict=True):
            for _, shown, _ in mutant.members:
                known.setdefault(shown, []).append((mutant, vector))
            for search, index in mutant.owners.items():
                answered[(search, index)] = vector
        for search in order:
            state = pending[search]
            got = {offered[search][index]: vector[search] for (owner, index), vector in answered.items()
                   if owner == search}
            stalled[search] = not got
            state.outcomes.update(got)
            if not state.waiting():
                advance(search, [state.outcomes[index] for index in range(len(state.request.contexts))])
    return [found for found in results if found is not None], {"mutants_asked": sum(asked), "images_scored": scored}


def _box(region: tuple[slice, ...]) -> Box:
    """A region of slices as a `Box`."""
    return Box(tuple(axis.start for axis in region), tuple(axis.stop for axis in region))


def _subset(request: Request, indices: list[int]) -> Request:
    """The mutants ``indices`` of ``request``."""
    return Request([request.contexts[i] for i in indices], [request.visible[i] for i in indices],
                   [request.boxes[i] for i in indices])


def shared_canvas(explainer, image: torch.Tensor, foreground: torch.Tensor, occluded: torch.Tensor, root: Box,
                  scorer: SharedScorer, bands: list[float], order: tuple[str, ...],
                  full_checks: FullChecks | None = None) -> tuple[list[Canvas], list[bool]]:
    """One canvas for every target, each target's view of it, and whether it is clean for each: its fully
    occluded image loses the target's decision by the target's band (for a crop, ``full_checks``: on the full
    input too, one full pass for all targets when any loses it on the crop), and (``auto``) fewer than
    `FAKING_SHARE` of the probe boxes keep it. ``auto`` scores the baselines of ``order`` (the fully occluded image and
    the probes: one set of passes for all targets) until one is clean for every target, else keeps the one
    clean for most (the first among equals); a forced occlusion is the only one."""
    kinds = order if explainer.occlusion == "auto" else (explainer.occlusion,)
    probes = probe_boxes(root, np.random.default_rng([explainer.seed, 7919])) if explainer.occlusion == "auto" else []
    best: tuple[int, list[Canvas], list[bool]] | None = None
    for kind in kinds:
        made = removed(image, kind, where=occluded, value=explainer.occlusion_value, foreground=foreground,
                       context=explainer.context, seed=explainer.seed)[0]
        outcomes = scorer.measure_all(torch.cat([made[None], probe_mutants(image, made, probes)]))
        losing = any(margin <= -band for (_, _, margin), band in zip(outcomes[0], bands, strict=True))
        on_full = full_checks(kind) if full_checks is not None and losing else [None] * len(bands)
        views, clean = [], []
        for index, band in enumerate(bands):
            score, ok, margin = outcomes[0][index]
            faking = sum(sample[index][1] for sample in outcomes[1:]) >= FAKING_SHARE * len(probes) if probes else False
            views.append(Canvas(kind, made, (score, ok), margin, on_full[index]))
            clean.append(views[-1].removes(band) and not faking)
        if best is None or sum(clean) > best[0]:
            best = (sum(clean), views, clean)
        if all(clean):
            break
    assert best is not None
    return best[1], best[2]


def explain_targets(explainer, inputs: torch.Tensor, targets: Sequence[RegionTarget],
                    progress: Progress | None = None, full_checks: FullChecks | None = None) -> list[Attribution]:
    """One `Attribution` per target of a (1, C, *S) image, from one shared search (module docstring);
    ``full_checks``: the image is a crop, and a canvas must remove each target's evidence from the full input too
    (the shared canvas, and each search of one target alone).

    Each target's ``stats`` say what it cost alone (``target_passes``: its explanations, values and certificate,
    and a search of its own where it needed one) beside the shared part (``shared_search``); ``forward_passes``
    of each is the whole run's (`metered` by the caller)."""
    model = explainer.model
    report = progress or (lambda stage, fraction: None)
    started = time.perf_counter()
    image = inputs.to(model.device)
    spatial = tuple(image.shape[2:])
    reaches = [reach(model, target, spatial) for target in targets]
    within = None if any(r is None for r in reaches) else _bounding(reaches)
    foreground, root, occluded = occludable_region(image, within=within)
    searched = torch.zeros(spatial, dtype=torch.bool, device=image.device)
    searched[root.slices()] = True
    shared = SharedScorer(model, targets, image)
    passes_before, model_seconds_before = int(model.forward_passes), model.forward_seconds
    margins = [margin for _, _, margin in shared.measure_all(image)[0]]
    for target, margin in zip(targets, margins, strict=True):
        if margin < 0:
            raise InputError(f"the model does not decide '{target.label}' on this image, so nothing can be responsible "
                             "for it — explain the labels one at a time with --target", code=ErrorCode.NOT_DECIDED)
    bands = [KEEP_MARGIN * margin for margin in margins]
    order = AUTO_ORDER if explainer.occlusion == "context" else canvas_order(model, image, within)
    views, clean = shared_canvas(explainer, image, foreground, occluded, root, shared, bands, order, full_checks)
    together = [index for index, ok in enumerate(clean) if ok]
    found: dict[int, Found] = {}
    record: dict = {"targets": len(targets), "searched_together": len(together), "occlusion": views[0].kind}
    minimum = explainer.min_part_voxels or part_floor(root, explainer.spacing)
    if together:
        scorer = SharedScorer(model, [targets[index] for index in together], image)
        scorer.set_canvas(views[0].image)
        fractions = [0.0] * len(together)

        def reporter(slot: int) -> Progress:
            def tell(stage: str, fraction: float) -> None:
                fractions[slot] = fraction
                report("responsibility (all targets)", 0.8 * sum(fractions) / len(fractions))
            return tell

        steps = [explainer.search().steps(spatial, image.device, views[index].outcome, root, minimum, reporter(slot))
                 for slot, index in enumerate(together)]
        boxes = {slot: None if reaches[index] is None else _box(reaches[index]) for slot, index in enumerate(together)}
        results, counts = run_together(steps, scorer, boxes)
        found = dict(zip(together, results, strict=True))
        record.update(counts)
    search_seconds = time.perf_counter() - started
    record["forward_passes"] = int(model.forward_passes) - passes_before
    record["seconds"] = search_seconds
    slots = [ProgressSlot(report, index, len(targets), target.name) for index, target in enumerate(targets)]
    finishing = [index for index in range(len(targets)) if index in found]

    def stages(index: int) -> Callable[[TargetView], Attempt]:
        def finish(view: TargetView) -> Attempt:
            mine = copy.copy(explainer)  # the explainer's stages count and score through the view
            mine.model = view
            scorer = MutantScorer(view, targets[index], image)
            scorer.set_canvas(views[index].image)
            band = scorer.band = KEEP_MARGIN * margins[index]
            return mine.finish(scorer, views[index], band, searched, occluded, found[index], search_seconds, order,
                               slots[index], margin=margins[index])
        return finish

    before = int(model.forward_passes)
    runs, record["finishing"] = finish_together(
        model, [targets[index] for index in finishing], SharedScorer(model, [targets[i] for i in finishing], image)
        .measure_all, [stages(index) for index in finishing],
        [None if reaches[index] is None else _box(reaches[index]) for index in finishing],
        (views[0].image, image[0]))
    record["finishing"]["forward_passes"] = int(model.forward_passes) - before
    finished = dict(zip(finishing, runs, strict=True))
    attributions = []
    for index, target in enumerate(targets):
        before = int(model.forward_passes)
        if full_checks is not None:  # a target searched alone checks its own canvases on the full input
            explainer.full_input_check = lambda kind, index=index: full_checks(kind)[index]
        attribution = _explain_one(explainer, image, target, views[index], finished.get(index), root, minimum,
                                   model_seconds_before, slots[index])
        attribution.stats["target_passes"] = int(model.forward_passes) - before + (
            sum(finished[index].passes.values()) if index in finished else 0)
        attribution.stats["shared_search"] = dict(record)
        attribution.stats["peak_memory_mb"] = peak_memory_mb(image.device)
        explainer._fill_stats(attribution, {})  # the caller meters the whole run
        attributions.append(attribution)
    report(f"{explainer.name}: done", 1.0)
    return attributions


@dataclass
class ProgressSlot:
    """One target's stages inside its share of the bar's last fifth, so the bar never goes back."""

    report: Progress
    index: int
    count: int
    name: str

    def __call__(self, stage: str, fraction: float) -> None:
        self.report(f"{self.name}: {stage}", 0.8 + 0.2 * (self.index + min(max(fraction, 0.0), 1.0)) / self.count)


def _explain_one(explainer, image: torch.Tensor, target: RegionTarget, view: Canvas, run: Attempt | None,
                 root: Box, minimum: int, model_seconds_before: float, report: Progress) -> Attribution:
    """One target's attribution from its part of the shared search, finished with the others'
    (`finish_together`: ``run``); searched again on its own (`CausalResponsibility._attribute`) when it had no
    part (the shared canvas was not clean for it) or its certificate failed."""
    if run is not None:
        tried = [{"occlusion": view.kind, "verdict": run.certificate.verdict, "reason": run.certificate.reason,
                  "search": "shared"}]
        if run.certificate.verdict != "fail":
            return explainer._attribution(run, tried, [], root, minimum,
                                          explainer.model.forward_seconds - model_seconds_before, image.device)
        alone = "its explanation from the shared search failed its certificate"
    else:
        alone = f"the shared canvas ({view.kind}) does not remove its evidence cleanly"
    attribution = explainer._attribute(image, target, report)
    attribution.stats.setdefault("warnings", []).append(f"'{target.label}' was searched on its own: {alone}")
    attribution.details["searched_alone"] = alone
    return attribution


__all__ = ["SHARED_METHODS", "SharedScorer", "explain_targets", "measured_all", "pack", "run_together", "shared_canvas"]
