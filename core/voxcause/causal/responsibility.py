"""Causal responsibility maps (actual causality, as in ReX / 3D ReX), batched on the model's device.

The algorithm, in our words:

1. Partition the foreground bounding box (not the air around the body) into 4 random children.
2. Evaluate subsets of the children kept visible, with the rest of the box occluded (the full set is the
   parent mutant, known to pass). The formal rule evaluates all 15 others; ReX's rule only needs the
   smallest passing subsets, so subsets are tried by size and most splits cost 4 passes, not 15 (the empty
   subset below the root is known to fail: it is a smaller subset that failed one level up). A subset
   *passes* if the target decision still holds.
3. Give each child a degree of responsibility:
   * ``rule="rex"`` (ReX): 1/|S| for the smallest passing subset S in which it is critical (S without it
     fails);
   * ``rule="formal"`` (Halpern's actual causality within the partition): 1/(1+k), k the fewest *other*
     children that must be occluded (the contingency) before occluding this child flips the decision.
   The value is added to the child's voxels weighted by 64^depth (relative to the depth its own branch
   resolved to, `_resolved_depths`). ReX adds the bare value to every voxel of a part, so the large parts of
   the first levels, mostly healthy tissue, carry most of the map's mass. With this weight a voxel's value is
   set by the deepest level that credited it, and coarser levels only break ties.
4. Descend into the smallest passing subset (ties: random among the best-scoring), splitting each of its
   children while its siblings stay visible as context (a conjunction: every part is needed), and into one
   part of each other disjoint passing subset (a disjunction: either part suffices), at most ``max_jobs``
   boxes per iteration and level; stop at ``min_part_voxels``.
5. Repeat for ``iterations`` random partitions and merge the per-iteration maps, each scaled to peak 1:
   ``multiplicative`` (default) takes their geometric mean, so a voxel ranks high only if every iteration
   refined down to it; a miss counts as 9 levels below the iteration's peak. ``additive`` takes their mean.
   This *search map* ranks voxels; its values still record how the random search went.
6. Extract the explanations from that ranking (`_extract`: sufficient, contrastive, multiple disjoint ones).
7. Set the values (`voxcause.causal.values`): the parts of the explanations get Halpern's degree of
   responsibility 1/(1+k) among themselves, found in at most 2^5 passes, and each part's share of the map's
   mass is its degree, spread in the shape of the search map. So two parts of a conjunction get equal mass,
   the two parts of a disjunction too, and no value depends on how deep the search went in one branch.
   Measured at the defaults on the known-cause models, 5 seeds each: first part's share of the two parts'
   mass 0.50 at every seed for conjunctive and disjunctive pairs at 32^3, 0.48-0.55 at 48^3 (before: 0.04-0.97),
   0.92-0.99 of the mass on the two parts (grown by 2 voxels); a single cause beside a decoy holds 0.92-0.99 of
   the mass, the decoy 0.000. Ties inside the search's boxes
   are then broken by the blurred map (`values.break_ties`).
8. Certify it (`voxcause.certificate`): the explanation alone passes, its removal loses the decision, size-
   matched controls from the least responsible voxels fail, it covers at most half the searched region; on a
   forced canvas, its top quarter alone must not decide on the canvas ``auto`` would choose (else most of it
   is the canvas's doing).

Occlusion ``auto`` (`baselines.ordered_canvases`) orders the baselines constant, mean, min and blur by what they
do to random boxes of tissue pasted on them (a canvas that draws an edge around every pasted box lets scraps of
plain tissue pass, for a model that reads edges); the search runs on the best,
and when its certificate fails, on the next (at most `MAX_AUTO_ATTEMPTS`), keeping the best verdict.

Mutants are built from box coordinates: each is a copy of a pre-occluded canvas with boxes pasted back from
the image, written straight into a reused batch buffer on the model's device. All iterations advance one
level at a time, so their mutants share full batches.
"""

from __future__ import annotations

import itertools
import math
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..attribution import OCCLUSIONS, SEED, Explainer, Option
from ..certificate import Certificate, certify, decisions
from ..errors import InputError
from ..explanation import Attribution
from ..ops import dilate, gaussian_blur
from ..targets import Target
from .baselines import AUTO_ORDER, auto_canvas, occludable_region, occlusion_baseline, ordered_canvases
from .partition import Box, split_box
from .search import prune_components, rank_voxels, smallest_passing
from .values import (
    MAX_ALTERNATIVE_RATIO,
    break_ties,
    degrees_of_responsibility,
    explanation_parts,
    responsibility_values,
)

Progress = Callable[[str, float], None]
RULES = ("rex", "formal")
# occlusion auto: how many baselines are searched at most when the first explanation's certificate fails.
MAX_AUTO_ATTEMPTS = 3
VERDICT_ORDER = ("pass", "weak", "fail")
MERGES = ("additive", "multiplicative")
# A part's credit is weighted by 4^(LEVEL_POWER * its depth in the search), relative to the depth its own branch
# resolved to: each level (parts a quarter of the size) weighs 64x the level above per voxel, so the search map's
# mass sits where the search narrowed down and coarse levels only break ties. Depth, not volume: two branches
# refined equally deep get equal weight however the random cuts sized their last parts. This only ranks voxels;
# the final values come from `voxcause.causal.values`. Measured with the benchmark ball: 96% / 92% of the mass
# lies in it at 64^3 / 128^3.
LEVEL_POWER = 3
# In the geometric mean an iteration that credited no part of a voxel counts it UNCREDITED_LEVELS levels below
# that iteration's peak: a miss costs about as much as nine levels of refinement earn. Tuned once on the
# benchmark ball at 64^3 (5, 9, 10, 11, 15 levels: rank accuracy 0.69, 0.72, 0.71, 0.71, 0.67).
UNCREDITED_LEVELS = 9
# Explanations: the map blurred by SMOOTH_SIGMA voxels breaks ties in the ranking and ranks the search for each
# alternative (multiple explanations), which looks among up to ALTERNATIVE_SEARCH_RATIO times the first's size of
# the remaining voxels. Measured on the disjunctive known-cause pairs (32^3 and 48^3, seeds 0-4, 10 iterations):
# the raw map, or a search capped at MAX_ALTERNATIVE_RATIO, missed the twin at 2 of 20 cases (first part's share
# 0.97-0.99); this finds it in all.
SMOOTH_SIGMA = 1.5
ALTERNATIVE_SEARCH_RATIO = 4 * MAX_ALTERNATIVE_RATIO


@dataclass
class _Part:
    """A credited part of one iteration's search tree: ``credit`` is its degree of responsibility at ``depth``.

    ``parent`` indexes the part it was split from (None below the root); ``split`` says whether it was refined
    itself.
    """

    box: Box
    credit: float
    depth: int
    parent: int | None
    split: bool = False


@dataclass
class _Run:
    """One explanation on one canvas: the map, masks and their certificate."""

    occlusion: str
    map: torch.Tensor
    masks: dict[str, torch.Tensor]
    details: dict
    counts: dict
    depth: int
    timings: dict
    certificate: Certificate


@dataclass
class _Job:
    """Split ``box`` of iteration ``iteration`` while ``context`` boxes stay visible; ``part`` is its credited
    part (None for the root)."""

    iteration: int
    box: Box
    context: tuple[Box, ...]
    depth: int
    part: int | None = None
    children: list[Box] | None = None
    child_parts: dict[int, int] | None = None


def _subset_masks(count: int) -> range:
    """Bitmasks of the subsets evaluated for ``count`` children: all but the full set (the parent, known to pass)."""
    return range(0, (1 << count) - 1)


def _members(bits: int, count: int) -> list[int]:
    return [i for i in range(count) if bits >> i & 1]


class CausalResponsibility(Explainer):
    """Causal responsibility maps and minimal explanations for any classifier or segmenter.

    Args:
        model: a `voxcause.models.LoadedModel` (any format: the method needs forward passes only).
        iterations: random partitions to merge (default 10; ReX uses 20, but each of ours refines up to
            ``max_jobs`` boxes per level and still costs about half of its passes).
        rule: ``"rex"`` (1/|S| for parts of a passing subset) or ``"formal"`` (1/(1+k), minimal contingency).
        merge: ``"multiplicative"`` (default: geometric mean, keeps what every iteration found; measured rank
            accuracy 0.70 vs 0.51 additive on the benchmark ball at 64^3) or ``"additive"``.
        occlusion: ``auto`` (default: the baseline of constant, mean, min, blur that removes evidence without
            adding any, by random-box probes, and the next one when the explanation's certificate fails) |
            ``constant`` | ``min`` | ``mean`` | ``blur`` | ``context``; ``occlusion_value`` for constant;
            ``context`` is a (1, C, *S) healthy volume in the model's grid for ``occlusion="context"``.
        min_part_voxels: parts smaller than this are not split further (default: 1/2000 of the searched box,
            at least 8 voxels).
        max_jobs: boxes an iteration refines per level (default 2): every part of the chosen passing subset
            (a conjunction: all are needed), then one part of each other, disjoint passing subset (a disjunction:
            either suffices), so that interchangeable and jointly needed parts are all refined in every iteration.
        explanations: which explanations to extract: any of ``sufficient``, ``contrastive``, ``multiple``.
        max_explanations: at most this many disjoint sufficient explanations for ``multiple``.
        seed: makes the random partitions (and so the map) reproducible.

    Example:
        >>> explainer = CausalResponsibility(model, iterations=20, seed=0)  # doctest: +SKIP
        >>> result = explainer.attribute(model.prepare(volume), target=target)  # doctest: +SKIP
        >>> result.map.shape  # (D, H, W) in the model's grid  # doctest: +SKIP
    """

    name = "rex"
    options = (
        Option("iterations", 10, "random partitions to merge"),
        Option("rule", "rex", "responsibility rule", choices=RULES),
        Option("merge", "multiplicative", "merging over iterations", choices=MERGES),
        Option("occlusion", "auto", "what an occluded voxel becomes", choices=OCCLUSIONS),
        Option("occlusion_value", 0.0, "value for occlusion 'constant'"),
        Option("context", None, "a healthy volume (model grid) for occlusion 'context'", supplied=True),
        Option("min_part_voxels", None, "parts smaller than this are not split further"),
        Option("max_jobs", 2, "boxes an iteration refines per level"),
        Option("explanations", ("sufficient", "contrastive", "multiple"), "which explanations to extract"),
        Option("max_explanations", 3, "at most this many disjoint sufficient explanations"),
        SEED,
        Option("spacing", None, "physical voxel size on the model grid", supplied=True),
    )

    def __init__(
        self,
        model,
        *,
        iterations: int = 10,
        rule: str = "rex",
        merge: str = "multiplicative",
        occlusion: str = "auto",
        occlusion_value: float = 0.0,
        context: torch.Tensor | None = None,
        min_part_voxels: int | None = None,
        max_jobs: int = 2,
        explanations: tuple[str, ...] = ("sufficient", "contrastive", "multiple"),
        max_explanations: int = 3,
        seed: int = 0,
        spacing: tuple[float, ...] | None = None,
    ) -> None:
        if rule not in RULES:
            raise InputError(f"unknown responsibility rule {rule!r} — use 'rex' or 'formal'")
        if merge not in MERGES:
            raise InputError(f"unknown merge {merge!r} — use 'additive' or 'multiplicative'")
        if iterations < 1:
            raise InputError("--iterations must be at least 1")
        super().__init__(model)
        self.iterations = int(iterations)
        self.rule = rule
        self.merge = merge
        self.occlusion = occlusion
        self.occlusion_value = float(occlusion_value)
        self.context = context
        self.min_part_voxels = min_part_voxels
        self.max_jobs = int(max_jobs)
        self.explanations = tuple(explanations)
        self.max_explanations = int(max_explanations)
        self.seed = int(seed)
        self.spacing = spacing

    # ------------------------------------------------------------------------------------------------
    def _attribute(self, inputs: torch.Tensor, target: Target, progress: Progress | None) -> Attribution:
        """The responsibility map (*S) and masks ``sufficient``, ``contrastive``, ``multiple_k``, certified;
        inputs (1, C, *S) in the model's grid (the base's `attribute` checks them and counts the passes)."""
        started = time.perf_counter()
        passes_before = self.model.forward_passes
        model_seconds_before = self.model.forward_seconds
        report = progress or (lambda stage, fraction: None)
        image = inputs.to(self.model.device)
        spatial = tuple(image.shape[2:])
        foreground, root, occluded = occludable_region(image)
        lo, hi = root.lo, root.hi
        searched = torch.zeros(spatial, dtype=torch.bool, device=image.device)
        searched[root.slices()] = True
        self._image, self._target = image[0], target
        self._buffer = torch.empty((self.model.batch_size, *image.shape[1:]), dtype=image.dtype, device=image.device)
        candidates = self._occlusion_candidates(image, foreground, occluded, root)
        first = next(candidates)
        warnings = self._occlusion_warnings(first[2])
        self._set_canvas(first[1])
        if not bool(self._evaluate([()], [[root]])[0][1]):
            raise InputError(
                f"the model does not decide '{target.label}' on this image, so nothing can be responsible for it — "
                "explain the predicted class (omit --target) or use --method occlusion"
            )

        minimum = self.min_part_voxels or max(8, math.ceil(root.volume / 2000))
        runs: list[_Run] = []
        tries = itertools.islice(itertools.chain([first], candidates), MAX_AUTO_ATTEMPTS)
        for attempt, (kind, canvas, occluded_outcome) in enumerate(tries):
            self._set_canvas(canvas)
            self._occluded_outcome = occluded_outcome
            label = "responsibility" if attempt == 0 else f"responsibility (occlusion {kind}, try {attempt + 1})"
            runs.append(self._run(kind, root, minimum, searched, occluded, lambda stage, f, label=label:
                                  report(label if stage == "responsibility" else stage, f)))
            if runs[-1].certificate.verdict != "fail":
                break
        run = min(runs, key=lambda r: VERDICT_ORDER.index(r.certificate.verdict))
        if len(runs) > 1:
            tried = ", ".join(f"{r.occlusion} ({r.certificate.verdict})" for r in runs)
            warnings.append(f"occlusion auto tried {tried}: the first baseline's explanation failed its certificate")
        details = dict(run.details)
        details["occlusion_tried"] = [
            {"occlusion": r.occlusion, "verdict": r.certificate.verdict, "reason": r.certificate.reason} for r in runs
        ]
        stats = {
            "forward_passes": self.model.forward_passes - passes_before,
            "model_seconds": self.model.forward_seconds - model_seconds_before,
            "passing_mutants": run.counts["passing"],
            "failing_mutants": run.counts["failing"],
            "depth_reached": run.depth,
            "min_part_voxels": minimum,
            "searched_box": {"lo": list(lo), "hi": list(hi)},
            "seconds": time.perf_counter() - started,
            "stage_seconds": run.timings,
            "peak_memory_mb": _peak_memory_mb(image.device),
            "occlusion_used": run.occlusion,
            "warnings": warnings,
        }
        del self._buffer, self._image, self._canvas, self._occluded_outcome
        return Attribution(
            map=run.map, masks=run.masks, stats=stats, details=details, certificate=run.certificate.to_dict()
        )

    def _run(self, occlusion: str, root: Box, minimum: int, searched: torch.Tensor, occluded: torch.Tensor,
             report: Progress) -> _Run:
        """One search, extraction and certificate on the current canvas."""
        started = time.perf_counter()
        parts, counts, depth_reached = self._search(root, minimum, report)
        # Only occluded voxels were ever intervened on: air inside a credited box (never hidden) is no cause.
        responsibility = self._merge(parts, tuple(searched.shape), searched.device) * occluded
        timings = {"responsibility": time.perf_counter() - started}
        masks, details = {}, {}
        if self.explanations:
            step = time.perf_counter()
            masks, details = self._extract(responsibility, searched, report)
            timings["extraction"] = time.perf_counter() - step
            explained = [mask for key, mask in masks.items() if key == "sufficient" or key.startswith("multiple_")]
            found = explanation_parts(explained, responsibility)
            degrees = degrees_of_responsibility(found, lambda shown: [ok for _, ok in self._masks_outcomes(shown)])
            responsibility = break_ties(responsibility_values(responsibility, found, degrees))
            details["parts"] = [
                {"voxels": int(part.sum()), "responsibility": degree} for part, degree in zip(found, degrees, strict=True)
            ]
        step = time.perf_counter()
        union = None
        for key, mask in masks.items():
            if key.startswith("multiple_") or key == "contrastive":
                union = mask if union is None else union | mask
        certificate = certify(
            self.model, self._image[None], self._target, responsibility, explanation=masks.get("sufficient"),
            removal=union, baseline=self._canvas, searched=occluded, seed=self.seed,
            reference=self._reference_canvas(),
        )
        timings["certificate"] = time.perf_counter() - step
        return _Run(occlusion, responsibility, masks, details, counts, depth_reached, timings, certificate)

    def _occlusion_candidates(
        self, image: torch.Tensor, foreground: torch.Tensor, occluded: torch.Tensor, root: Box
    ) -> Iterator[tuple[str, torch.Tensor, tuple[float, bool]]]:
        """The canvases (fully occluded images) to try, best first, each with its own (score, decision) —
        lazily (`baselines.ordered_canvases`), so a canvas is scored only when it is needed."""
        if self.occlusion == "auto":
            yield from ordered_canvases(image, occluded, root, self._score, foreground=foreground,
                                        value=self.occlusion_value, seed=self.seed)
            return
        baseline = occlusion_baseline(
            image, self.occlusion, value=self.occlusion_value, foreground=foreground, context=self.context
        )
        canvas = torch.where(occluded, baseline[0], image[0])
        yield self.occlusion, canvas, self._score(canvas[None])[0]

    def _reference_canvas(self) -> tuple[str, torch.Tensor] | None:
        """The canvas occlusion ``auto`` would choose, to test an explanation built on a forced baseline against
        (certificate check ``minimal_on_reference``); None for ``auto`` itself (its canvas was chosen for not
        adding evidence), for a healthy ``context`` volume (the reference a user gave is the better one) and when
        the forced baseline is the one auto chooses."""
        if self.occlusion in ("auto", "context"):
            return None
        kind, canvas = auto_canvas(self._image[None], self._score, value=self.occlusion_value, seed=self.seed)
        return None if kind == self.occlusion else (kind, canvas)

    def _occlusion_warnings(self, occluded_outcome: tuple[float, bool]) -> list[str]:
        """A warning when even the best canvas keeps the decision fully occluded (every one does, for auto)."""
        if not occluded_outcome[1]:
            return []
        kinds = AUTO_ORDER if self.occlusion == "auto" else (self.occlusion,)
        return [
            f"the fully occluded image still gets '{self._target.label}' with occlusion "
            f"{', '.join(kinds)}: the model decides this without the image's content, so "
            "responsibility is weak evidence here — try --occlusion PATH with a healthy volume"
        ]

    # ---- mutants ----------------------------------------------------------------------------------
    def _set_canvas(self, canvas: torch.Tensor) -> None:
        """The fully occluded image; every batch slot starts as a copy of it."""
        self._canvas = canvas
        self._buffer.copy_(canvas.expand_as(self._buffer))

    def _evaluate(self, contexts: list[tuple[Box, ...]], visible: list[list[Box]]) -> list[tuple[float, bool]]:
        """Score mutants: mutant i shows ``contexts[i]`` and ``visible[i]`` boxes, the rest of the box occluded.

        Slots hold the canvas; boxes are pasted from the image, scored, and restored from the canvas, so a
        mutant costs the size of its boxes, not a copy of the volume. The subsets of one split share their
        context (the siblings of every ancestor: up to one box per level), so they are laid out in one slot
        on consecutive batches: the context is pasted once per split and only the children change.
        """
        slots = self._buffer.shape[0]
        lanes = _lanes(contexts, slots)
        results: list[tuple[float, bool]] = [(0.0, False)] * len(visible)
        shown: list[tuple[tuple[Box, ...], list[tuple], list[tuple]] | None] = [None] * len(lanes)
        for step in range(len(lanes[0]) if lanes else 0):
            active = [lane for lane in lanes if len(lane) > step]  # a prefix: lanes are sorted longest first
            for slot, lane in enumerate(active):
                index = lane[step]
                state = shown[slot]
                if state is not None and state[0] is contexts[index]:
                    context_regions = state[1]
                    self._restore(state[2])
                else:
                    if state is not None:
                        self._restore(state[1] + state[2])
                    context_regions = self._paste(slot, contexts[index])
                shown[slot] = (contexts[index], context_regions, self._paste(slot, visible[index]))
            for slot, outcome in enumerate(self._score(self._buffer[: len(active)])):
                results[active[slot][step]] = outcome
        for state in shown:
            if state is not None:
                self._restore(state[1] + state[2])
        return results

    def _paste(self, slot: int, boxes) -> list[tuple]:
        regions = [(slot, slice(None), *box.slices()) for box in boxes]
        for region in regions:
            self._buffer[region] = self._image[region[1:]]
        return regions

    def _restore(self, regions: list[tuple]) -> None:
        for region in regions:
            self._buffer[region] = self._canvas[region[1:]]

    def _score(self, batch: torch.Tensor) -> list[tuple[float, bool]]:
        return decisions(self.model, self._target, batch)

    # ---- the partition search -----------------------------------------------------------------------
    def _search(self, root: Box, minimum: int, report: Progress):
        spacing = self.spacing or (1.0,) * len(root.lo)
        rngs = [np.random.default_rng([self.seed, iteration]) for iteration in range(self.iterations)]
        frontier = [_Job(i, root, (), 0) for i in range(self.iterations)]
        parts: list[list[_Part]] = [[] for _ in range(self.iterations)]
        counts = {"passing": 0, "failing": 0}
        depth = 0
        expected_depth = max(1, math.ceil(math.log(max(root.volume / minimum, 1), 4)))
        while frontier:
            report("responsibility", min(0.95, depth / (expected_depth + 1)))
            for job in frontier:
                job.children = split_box(job.box, rngs[job.iteration], spacing)
            table = self._evaluate_subsets(frontier, counts)
            refined: dict[int, list[list[_Job]]] = {}
            alternatives: dict[int, list[_Job]] = {}
            for job_index, job in enumerate(frontier):
                count = len(job.children)
                results = table.get(job_index, {})
                results[(1 << count) - 1] = (float("inf"), True)  # the parent mutant passes
                tree = parts[job.iteration]
                if job.part is not None:
                    tree[job.part].split = True
                job.child_parts = {}
                for index, (child, value) in enumerate(zip(job.children, self._responsibility(results, count), strict=True)):
                    if value > 0:
                        job.child_parts[index] = len(tree)
                        tree.append(_Part(child, value, job.depth + 1, job.part))
                chosen, others = self._descend(job, results, minimum, rngs[job.iteration])
                refined.setdefault(job.iteration, []).append(chosen)
                alternatives.setdefault(job.iteration, []).extend(others)
            frontier = []
            for iteration, branches in refined.items():
                # round robin over the branches, so that a cap cuts conjunction parts, not whole branches
                jobs = [job for rank in itertools.zip_longest(*branches) for job in rank if job is not None]
                frontier.extend((jobs + alternatives[iteration])[: self.max_jobs])
            depth += 1 if frontier else 0
        return parts, counts, depth

    def _evaluate_subsets(self, frontier: list[_Job], counts: dict) -> dict[int, dict[int, tuple[float, bool]]]:
        """Outcomes of the subsets of each job's children, evaluated in full batches across jobs.

        The formal rule needs every subset. ReX's rule only needs the smallest passing subsets, so subsets are
        evaluated by size (empty and singletons, then pairs, then triples) and a job stops at the first size
        where one passes: usually 4 forward passes per split instead of 15.

        Below the root the empty subset is never evaluated: it shows the job's context alone, which is its
        passing subset minus this box, one of the smaller subsets that failed one level up (the descent only
        follows smallest passing subsets). At the root it is the fully occluded canvas, scored once when the
        canvas was chosen, not once per iteration.
        """
        table: dict[int, dict[int, tuple[float, bool]]] = {
            index: {0: (-math.inf, False) if job.depth > 0 else self._occluded_outcome}
            for index, job in enumerate(frontier)
        }
        sizes = [None] if self.rule == "formal" else [(0, 1), (2,), (3,)]
        for wanted in sizes:
            specs, owners = [], []
            for job_index, job in enumerate(frontier):
                count = len(job.children)
                results = table[job_index]
                if wanted is not None and any(ok and bits for bits, (_, ok) in results.items()):
                    continue
                for bits in _subset_masks(count):
                    if bits in results:
                        continue
                    if wanted is None or bin(bits).count("1") in wanted:
                        specs.append((job.context, [job.children[i] for i in _members(bits, count)]))
                        owners.append((job_index, bits))
            if not specs:
                continue
            outcomes = self._evaluate([spec[0] for spec in specs], [spec[1] for spec in specs])
            for (job_index, bits), outcome in zip(owners, outcomes, strict=True):
                table[job_index][bits] = outcome
                counts["passing" if outcome[1] else "failing"] += 1
        return table

    def _responsibility(self, results: dict[int, tuple[float, bool]], count: int) -> list[float]:
        """Degree of responsibility of each child from the outcomes of all subsets.

        A child is credited only where it is *critical*: the subset S passes and S without it fails. ReX's rule
        gives 1/|S| for the smallest such S; the formal rule gives 1/(1+k) with k = count - |S| the occluded
        others (the contingency), i.e. it prefers the largest such S.
        """
        values = [0.0] * count
        for bits, (_, passing) in results.items():
            if not passing or not bits:
                continue
            members = _members(bits, count)
            for member in members:
                without = results.get(bits & ~(1 << member))
                if without is None or without[1]:
                    continue
                credit = 1.0 / len(members) if self.rule == "rex" else 1.0 / (1 + count - len(members))
                values[member] = max(values[member], credit)
        return values

    def _descend(
        self, job: _Job, results: dict[int, tuple[float, bool]], minimum: int, rng: np.random.Generator
    ) -> tuple[list[_Job], list[_Job]]:
        """Jobs for the next level: parts of the chosen smallest passing subset, and disjunctive alternatives.

        The chosen subset (best-scoring, ties random) gives one job per member large enough to split, each with
        its siblings visible (`_search` keeps at most ``max_jobs`` per iteration). Every other smallest passing subset disjoint from it is an alternative cause on
        its own (either suffices); one member of each is offered as an alternative job. Without them a
        disjunctive cause would be refined in one branch per iteration only, and the geometric mean would
        rank its interchangeable parts by luck.
        """
        passing = [bits for bits, (_, ok) in results.items() if ok and bits]
        smallest = min(bin(bits).count("1") for bits in passing)
        candidates = [bits for bits in passing if bin(bits).count("1") == smallest]
        best = max(results[bits][0] for bits in candidates)
        finite_best = best if math.isfinite(best) else 0.0
        tied = [bits for bits in candidates if results[bits][0] >= finite_best - 0.05]
        chosen = tied[int(rng.integers(len(tied)))] if len(tied) > 1 else tied[0]
        taken, others = chosen, []
        for bits in rng.permutation(candidates).tolist():
            if not bits & taken:
                taken |= bits
                others.extend(self._jobs_for(job, bits, minimum, rng)[:1])
        return self._jobs_for(job, chosen, minimum, rng), others

    def _jobs_for(self, job: _Job, bits: int, minimum: int, rng: np.random.Generator) -> list[_Job]:
        """One job per member of subset ``bits`` large enough to split, its siblings in the subset as context."""
        members = _members(bits, len(job.children))
        jobs = []
        for member in rng.permutation(members).tolist():
            child = job.children[member]
            if child.volume < 2 * minimum:
                continue
            siblings = tuple(job.children[m] for m in members if m != member)
            part = (job.child_parts or {}).get(member)
            jobs.append(_Job(job.iteration, child, job.context + siblings, job.depth + 1, part))
        return jobs

    def _merge(self, parts: list[list[_Part]], spatial: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """Merge the per-iteration maps, each scaled to peak 1 so that no iteration outweighs the others.

        Within an iteration a part's credit is weighted by `_resolved_depths`: relative to the depth its own
        branch resolved, not to the deepest part anywhere in the iteration. ``additive``: the mean of the
        iteration maps. ``multiplicative``: their geometric mean, with a voxel an iteration never credited
        counted `UNCREDITED_LEVELS` levels below that iteration's peak (the log of 0 would veto it).
        """
        total = torch.zeros(spatial, dtype=torch.float32, device=device)
        scratch = torch.empty_like(total)
        floor = 4.0 ** -(LEVEL_POWER * UNCREDITED_LEVELS)
        for tree in parts:
            scratch.zero_()
            for part, resolved in zip(tree, _resolved_depths(tree), strict=True):
                scratch[part.box.slices()] += part.credit * 4.0 ** (LEVEL_POWER * (part.depth - resolved))
            peak = float(scratch.max())
            if peak > 0:
                scratch /= peak
            total += scratch if self.merge == "additive" else torch.log(scratch.clamp_(min=floor))
        if self.merge == "additive":
            return total / self.iterations
        return (torch.exp(total / self.iterations) - floor).clamp(min=0)

    # ---- explanations -------------------------------------------------------------------------------
    def _mutants_from_rank(self, rank: torch.Tensor, counts: list[int], *, keep: bool) -> list[tuple[float, bool]]:
        """keep=True: top-n visible, other candidates occluded. keep=False: top-n occluded, the rest untouched."""
        outcomes: list[tuple[float, bool]] = []
        size = self._buffer.shape[0]
        for start in range(0, len(counts), size):
            chunk = counts[start : start + size]
            for slot, n in enumerate(chunk):
                top = (rank >= 0) & (rank < n)
                if keep:
                    torch.where(top, self._image, self._canvas, out=self._buffer[slot])
                else:
                    torch.where(top, self._canvas, self._image, out=self._buffer[slot])
            outcomes.extend(self._score(self._buffer[: len(chunk)]))
            self._buffer[: len(chunk)].copy_(self._canvas.expand(len(chunk), *self._canvas.shape))
        return outcomes

    def _mask_passes(self, mask: torch.Tensor) -> tuple[float, bool]:
        return self._masks_outcomes([mask])[0]

    def _masks_outcomes(self, masks: list[torch.Tensor], *, keep: bool = True) -> list[tuple[float, bool]]:
        """Score mutants in batches: keep=True shows only each mask (the rest occluded); keep=False occludes it."""
        outcomes: list[tuple[float, bool]] = []
        size = self._buffer.shape[0]
        for start in range(0, len(masks), size):
            chunk = masks[start : start + size]
            for slot, mask in enumerate(chunk):
                pair = (self._image, self._canvas) if keep else (self._canvas, self._image)
                torch.where(mask, *pair, out=self._buffer[slot])
            outcomes.extend(self._score(self._buffer[: len(chunk)]))
            self._buffer[: len(chunk)].copy_(self._canvas.expand(len(chunk), *self._canvas.shape))
        return outcomes

    def _extract(self, responsibility: torch.Tensor, searched: torch.Tensor, report: Progress):
        """The sufficient, contrastive and multiple explanations from the map, and what each scored.

        The sufficient and the contrastive explanation are read off one ranking of the searched voxels
        (responsible voxels first, then the rest, each by the tie-broken map), so they share its mutants: the
        contrastive one is the smallest top set that is sufficient *and* whose removal loses the decision, so
        its search starts where the sufficient one ended. Every score reported is one the search already made.
        """
        # Ties (voxels of one box share a value) are broken by a lightly blurred map: blob centres first.
        smooth = gaussian_blur(responsibility[None, None], SMOOTH_SIGMA)[0, 0]
        peak = float(smooth.max()) or 1.0
        key = responsibility + 1e-3 * smooth / peak
        candidates = searched & (responsibility > 0)
        masks: dict[str, torch.Tensor] = {}
        details: dict = {}
        total = int(searched.sum())

        def describe(mask: torch.Tensor, score: float) -> dict:
            return {"voxels": int(mask.sum()), "fraction": int(mask.sum()) / max(total, 1), "score": score}

        def pruned(mask: torch.Tensor, score: float) -> tuple[torch.Tensor, float]:
            """Drop the components the decision does not need; the score of what is left."""
            kept_score = [score]

            def keeps(trial: torch.Tensor) -> bool:
                trial_score, ok = self._mask_passes(trial)
                if ok:
                    kept_score[0] = trial_score
                return ok

            mask = prune_components(mask, responsibility, keeps)
            return mask, kept_score[0]

        def sufficient_in(pool: torch.Tensor, largest: int, order: torch.Tensor) -> tuple[torch.Tensor, float] | None:
            """The smallest top set of ``pool`` by ``order`` (at most ``largest`` voxels) that keeps the decision,
            pruned."""
            rank, count = rank_voxels(order, pool)
            shown = _Outcomes(lambda ns: self._mutants_from_rank(rank, ns, keep=True))
            n = smallest_passing(shown.decisions, min(count, int(largest)))
            return None if n is None else pruned((rank >= 0) & (rank < n), shown.score(n))

        wanted = set(self.explanations)
        if not wanted & {"sufficient", "contrastive", "multiple"}:
            return masks, details
        report("sufficient explanation", 0.96)
        bonus = candidates.float() * (float(key.max()) + 1.0)  # responsible voxels rank before the rest
        rank, count = rank_voxels(key + bonus, searched)
        shown = _Outcomes(lambda ns: self._mutants_from_rank(rank, ns, keep=True))
        smallest = smallest_passing(shown.decisions, count)
        first = None
        if smallest is not None:
            first, first_score = pruned((rank >= 0) & (rank < smallest), shown.score(smallest))
        if "sufficient" in wanted:
            if first is not None:
                masks["sufficient"] = first
                details["sufficient"] = describe(first, first_score)
            else:
                details["sufficient"] = {"found": False, "voxels": 0, "fraction": 0.0, "score": None}

        if "contrastive" in wanted:
            report("contrastive explanation", 0.97)
            removed = _Outcomes(lambda ns: self._mutants_from_rank(rank, ns, keep=False))
            n = None
            if smallest is not None:
                # sufficient from `smallest` on (the ranking's mutants are monotone); now removal must lose it
                n = smallest_passing(lambda ns: [not ok for ok in removed.decisions(ns)], count, start=smallest)
            if n is not None:
                mask = (rank >= 0) & (rank < n)
                masks["contrastive"] = mask
                details["contrastive"] = {**describe(mask, shown.score(n)), "score_removed": removed.score(n)}
            else:
                details["contrastive"] = {
                    "found": False,
                    "voxels": 0,
                    "fraction": 0.0,
                    "reason": "no ranked set is both sufficient and necessary (disjunctive cause?)",
                }

        if "multiple" in wanted and first is not None:
            report("multiple explanations", 0.98)
            blurred = smooth + 1e-6 * key
            found = [(first, first_score)]
            excluded = dilate(first)
            while len(found) < self.max_explanations:
                pool = candidates & ~excluded
                if not bool(pool.any()):
                    break
                # Searched for among up to `ALTERNATIVE_SEARCH_RATIO` times the first's size, by the blurred map (a
                # disjunctive twin is refined in fewer iterations: right at coarse scale, scattered at fine), then
                # tightened to its smallest sufficient top set by the map itself.
                nxt = sufficient_in(pool, ALTERNATIVE_SEARCH_RATIO * int(first.sum()), blurred)
                if nxt is not None:
                    nxt = sufficient_in(nxt[0], int(nxt[0].sum()), key) or nxt
                # An alternative far larger than the first is the rest of the image, not a cause the search
                # narrowed down (seen: 39% of a 128^3 volume on a half-occluded canvas).
                if nxt is None or int(nxt[0].sum()) > MAX_ALTERNATIVE_RATIO * int(first.sum()):
                    break
                found.append(nxt)
                excluded |= dilate(nxt[0])
            for index, (mask, _) in enumerate(found, start=1):
                masks[f"multiple_{index}"] = mask
            details["multiple"] = [describe(mask, score) for mask, score in found]
        return masks, details


class _Outcomes:
    """Mutant outcomes by size n along one ranking, each scored once (the searches revisit sizes)."""

    def __init__(self, evaluate: Callable[[list[int]], list[tuple[float, bool]]]) -> None:
        self._evaluate = evaluate
        self._known: dict[int, tuple[float, bool]] = {}

    def _ensure(self, ns: list[int]) -> None:
        missing = [n for n in dict.fromkeys(ns) if n not in self._known]
        if missing:
            self._known.update(zip(missing, self._evaluate(missing), strict=True))

    def decisions(self, ns: list[int]) -> list[bool]:
        self._ensure(ns)
        return [self._known[n][1] for n in ns]

    def score(self, n: int) -> float:
        self._ensure([n])
        return self._known[n][0]


def _resolved_depths(tree: list[_Part]) -> list[int]:
    """The depth at which each part's branch was resolved, so that its credit can be weighed against it.

    A part that was not split is resolved where it stands (its own depth); a part that was split is resolved
    by its deepest credited descendant, and at least one level further down (a split that credited no child
    explains nothing finer). Parts are stored after their parents, so one backward pass carries each branch's
    depth up to its ancestors.
    """
    resolved = [part.depth + 1 if part.split else part.depth for part in tree]
    for index in range(len(tree) - 1, -1, -1):
        parent = tree[index].parent
        if parent is not None:
            resolved[parent] = max(resolved[parent], resolved[index])
    return resolved


def _lanes(contexts: list[tuple[Box, ...]], slots: int) -> list[list[int]]:
    """Mutant indices per batch slot, longest lane first: runs of mutants sharing a context stay in one lane.

    Runs are cut to the even share ceil(n / slots) so the batches stay full, then placed longest first on the
    shortest lane (LPT scheduling)."""
    share = max(1, math.ceil(len(contexts) / slots))
    runs: list[list[int]] = []
    for index, context in enumerate(contexts):
        if runs and len(runs[-1]) < share and contexts[runs[-1][-1]] is context:
            runs[-1].append(index)
        else:
            runs.append([index])
    lanes: list[list[int]] = [[] for _ in range(min(slots, len(runs)))]
    for run in sorted(runs, key=len, reverse=True):
        min(lanes, key=len).extend(run)
    return sorted(lanes, key=len, reverse=True)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


__all__ = ["CausalResponsibility"]
