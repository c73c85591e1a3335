"""The responsibility search (actual causality, as in ReX / 3D ReX): partition, credit rule, merge.

The algorithm, in our words:

1. Partition the foreground bounding box (not the air around the body) into 4 random children.
2. Evaluate subsets of the children kept visible, with the rest of the box occluded (the full set is the
   parent mutant, known to pass). A subset *passes* if the target decision still holds. The formal rule
   evaluates all 15 others. ReX's rule only needs the smallest passing subsets: each of them scored, every
   other subset up to their size known to fail (`Split`), and if the decision is monotone in what is shown (a
   superset of a passing subset passes, a subset of a failing one fails) far fewer passes tell that. In the
   first iteration subsets are tried by size: 4 passes when a child passes alone, 10 for a pair, 14 for a
   triple (the empty subset below the root is known to fail: it is a smaller subset that failed one level
   up). In every later one the merge of the iterations before guesses the child that holds the cause: that
   child passing alone and the full set without it failing settle the split in 2 passes; a wrong guess costs
   its 2 on top of the sizes. The root is always tried by size: its partition is the same for every target of
   a shared search (`voxcause.causal.multi`), which then scores its subsets once for all.
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
5. Repeat for random partitions, one at a time (each guided by the merge of those before, step 2), until the
   merged map's top stops changing (at most ``iterations``), and merge the per-iteration maps, each scaled
   to peak 1:
   ``multiplicative`` (default) takes their geometric mean, so a voxel ranks high only if every iteration
   refined down to it; a miss counts as 9 levels below the iteration's peak. ``additive`` takes their mean.
   This *search map* ranks voxels; its values still record how the random search went.
6. Extract the explanations from that ranking (`extract`: sufficient, contrastive, multiple disjoint ones).
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

Occlusion ``auto`` (`auto.ordered_canvases`) orders the baselines constant, mean, min and blur by what they
do to random boxes of tissue pasted on them (a canvas that draws an edge around every pasted box lets scraps of
plain tissue pass, for a model that reads edges); the search runs on the best,
and when its certificate fails, on the next (at most `auto.MAX_AUTO_ATTEMPTS`), keeping the best verdict.

Mutants are built from box coordinates (`mutants.MutantScorer`): each is a copy of a pre-occluded canvas with
boxes pasted back from the image, written straight into a reused batch buffer on the model's device. An
iteration advances one level at a time, so the mutants of its jobs at one level share batches.

This module is the search (steps 1-5), its credit rule and the merge; the stages around it have their own
modules: `mutants` (scoring mutants), `extract` (step 6), `values` (step 7), `auto` (canvas choice and retries),
`explainer` (`CausalResponsibility`: the steps in order, on each canvas tried).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..ops import gaussian_blur
from ..typing import Progress
from .extract import SMOOTH_SIGMA
from .mutants import MutantScorer, Outcome
from .partition import Box, split_box
from .subsets import Split, subset_masks, subset_members

RULES = ("rex", "formal")
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
# Convergence. What the explanations read off the map is the top of its ranking (blurred by SMOOTH_SIGMA, as
# `extract` breaks ties and ranks alternatives): the sufficient explanation is the smallest top set that keeps the
# decision, and it lies in the region the search resolved, the voxels whose blurred merge is within one level of
# refinement (RESOLVED_RATIO = 4^-LEVEL_POWER) of its peak (on the benchmark cases after 10 iterations 1,070-6,700
# voxels; their sufficient explanations at 64^3 held 575-1,900). So after every iteration the top set of that size is compared
# with the previous merge's top set of the same size. Merges of fewer than MIN_ITERATIONS iterations are too
# noisy to compare; once STABLE_STEPS successive iterations, each added to a merge of at least MIN_ITERATIONS,
# changed less than 1 - CONVERGED_OVERLAP of that set, more iterations would not move what the explanations are
# read from, and the search stops (at most `iterations`). Successive merges share all but one iteration, and
# on the benchmark cases one or two agreeing iterations were often followed by one that moved a fifth of the
# set, hence three in a row. A laxer rule (15% changed, three in a row) stopped runs of the known-cause models
# whose certificate or mass on the causes then fell short of the full run's (tests/causal/test_certificate.py,
# test_values.py). Measured on bench/bench_causal.py's 12 cases (2 models x 64^3/128^3 x 3 seeds): see
# docs/design.md.
MIN_ITERATIONS = 4
RESOLVED_RATIO = 4.0 ** -LEVEL_POWER
CONVERGED_OVERLAP = 0.9
STABLE_STEPS = 3


@dataclass(frozen=True)
class Request:
    """Mutants a search needs scored: mutant i shows ``contexts[i]`` and ``visible[i]`` (boxes), the rest of the
    searched box occluded; ``boxes[i]`` is the box being split, the only place where the visible boxes of one
    split's mutants differ (`MutantScorer.boxes` takes the first two; `voxcause.causal.multi` needs all three)."""

    contexts: list[tuple[Box, ...]]
    visible: list[list[Box]]
    boxes: list[Box]


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
class _Job:
    """Split ``box`` while ``context`` boxes stay visible; ``part`` is its credited part (None for the root)."""

    box: Box
    context: tuple[Box, ...]
    depth: int
    part: int | None = None
    children: list[Box] | None = None
    child_parts: dict[int, int] | None = None


@dataclass(frozen=True)
class PartitionSearch:
    """The random partition search of ``iterations`` partitions, credited by ``rule`` and merged by ``merge``
    (see the module docstring); ``max_jobs`` boxes refined per iteration and level; ``seed`` draws the
    partitions; ``spacing`` (physical voxel size) weighs the axes a split cuts."""

    iterations: int
    rule: str
    merge: str
    max_jobs: int
    seed: int
    spacing: Sequence[float] | None = None

    def run(
        self, scorer: MutantScorer, occluded_outcome: Outcome, root: Box, minimum: int, report: Progress
    ) -> tuple[torch.Tensor, dict, int, dict]:
        """`steps` driven to its end, every request scored by ``scorer`` (`MutantScorer.boxes`)."""
        steps = self.steps(tuple(scorer.image.shape[1:]), scorer.image.device, occluded_outcome, root, minimum,
                           report)
        try:
            request = next(steps)
            while True:
                request = steps.send(scorer.boxes(request.contexts, request.visible))
        except StopIteration as done:
            return done.value

    def steps(
        self, spatial: tuple[int, ...], device: torch.device, occluded_outcome: Outcome, root: Box, minimum: int,
        report: Progress,
    ) -> Generator[Request, list[Outcome], tuple[torch.Tensor, dict, int, dict]]:
        """Search ``root`` on the scorer's canvas down to parts of ``minimum`` voxels: the merged map (*S), the
        passing/failing mutant counts, the depth reached and how many iterations ran and why they stopped.
        ``occluded_outcome`` is the fully occluded image's (the root's empty subset in every iteration).

        Iterations run one at a time, each after the first guided by the merge of those before
        (`_evaluate_subsets`). After each iteration the top of the merge so far is compared with the previous
        merge's (`_Convergence`); the search stops once it has settled, at most ``iterations``.

        A coroutine: it yields each batch of mutants it needs as a `Request` and is sent their outcomes, so one
        driver can score the mutants of several searches together (`voxcause.causal.multi`)."""
        counts = {"passing": 0, "failing": 0}
        merge = _Merge(self.merge, spatial, device)
        convergence = _Convergence(root)
        depth, stopped = 0, "limit"
        while merge.count < self.iterations:

            def iteration_report(stage: str, fraction: float, done: int = merge.count) -> None:
                report(stage, min(0.95, (done + fraction) / self.iterations))

            prior = merge.map() if merge.count else None
            tree, reached = yield from self._iteration(occluded_outcome, root, minimum, merge.count, counts,
                                                       iteration_report, prior)
            depth = max(depth, reached)
            merge.add(tree)
            convergence.compare(merge.map())
            if merge.count < self.iterations and convergence.settled():
                stopped = "converged"
                break
        summary = {"run": merge.count, "most": self.iterations, "stopped": stopped, **convergence.summary()}
        return merge.map(), counts, depth, summary

    def _iteration(
        self, occluded_outcome: Outcome, root: Box, minimum: int, iteration: int, counts: dict, report: Progress,
        prior: torch.Tensor | None,
    ) -> Generator[Request, list[Outcome], tuple[list[_Part], int]]:
        """The partition search of one iteration, one level at a time: its credited parts and the depth reached
        (``counts`` gains the passing/failing mutants). ``prior``: the merge of the iterations before
        (`_evaluate_subsets`)."""
        spacing = self.spacing or (1.0,) * len(root.lo)
        rng = np.random.default_rng([self.seed, iteration])
        frontier = [_Job(root, (), 0)]
        tree: list[_Part] = []
        depth = 0
        expected_depth = max(1, math.ceil(math.log(max(root.volume / minimum, 1), 4)))
        while frontier:
            report("responsibility", min(1.0, depth / (expected_depth + 1)))
            for job in frontier:
                job.children = split_box(job.box, rng, spacing)
            table = yield from self._evaluate_subsets(occluded_outcome, frontier, counts, prior)
            branches: list[list[_Job]] = []
            alternatives: list[_Job] = []
            for job_index, job in enumerate(frontier):
                count = len(job.children)
                results = table.get(job_index, {})
                results[(1 << count) - 1] = (float("inf"), True)  # the parent mutant passes
                if job.part is not None:
                    tree[job.part].split = True
                job.child_parts = {}
                for index, (child, value) in enumerate(zip(job.children, self._responsibility(results, count), strict=True)):
                    if value > 0:
                        job.child_parts[index] = len(tree)
                        tree.append(_Part(child, value, job.depth + 1, job.part))
                chosen, others = self._descend(job, results, minimum, rng)
                branches.append(chosen)
                alternatives.extend(others)
            # round robin over the branches, so that a cap cuts conjunction parts, not whole branches
            jobs = [job for rank in itertools.zip_longest(*branches) for job in rank if job is not None]
            frontier = (jobs + alternatives)[: self.max_jobs]
            depth += 1 if frontier else 0
        return tree, depth

    def _evaluate_subsets(
        self, occluded_outcome: Outcome, frontier: list[_Job], counts: dict, prior: torch.Tensor | None,
    ) -> Generator[Request, list[Outcome], dict[int, dict[int, Outcome]]]:
        """Outcomes of the subsets of each job's children, evaluated in full batches across jobs.

        The formal rule needs every subset. ReX's rule only needs the smallest passing subsets (`Split`): each
        of them scored, every smaller or equal subset known to fail. ``prior`` (the merge of the iterations
        before, None in the first) gives each split below the root its guess (`Split.guess`), the child with
        the most of the prior's mass.

        Below the root the empty subset is never evaluated: it shows the job's context alone, which is its
        passing subset minus this box, one of the smaller subsets that failed one level up (the descent only
        follows smallest passing subsets). At the root it is the fully occluded canvas, scored once when the
        canvas was chosen, not once per iteration.
        """
        guided = prior is not None and self.rule == "rex"
        splits = [Split(len(job.children), occluded_outcome if job.depth == 0 else (-math.inf, False),
                         [float(prior[child.slices()].sum()) for child in job.children]
                         if guided and job.depth > 0 else None)
                  for job in frontier]
        if self.rule == "formal":
            asks = [[bits for bits in subset_masks(split.count) if bits not in split.scored] for split in splits]
            yield from self._score(frontier, splits, asks, counts)
            return {index: split.scored for index, split in enumerate(splits)}
        while True:
            asks = [split.guess() or split.next_size() for split in splits]
            if not any(asks):
                return {index: split.table() for index, split in enumerate(splits)}
            yield from self._score(frontier, splits, asks, counts)

    @staticmethod
    def _score(
        frontier: list[_Job], splits: list[Split], asks: list[list[int]], counts: dict
    ) -> Generator[Request, list[Outcome], None]:
        """Score the subsets ``asks[i]`` of job i's children (one request for all jobs) into ``splits[i]``."""
        owners = [(index, bits) for index, wanted in enumerate(asks) for bits in wanted]
        if not owners:
            return
        jobs = [frontier[index] for index, _ in owners]
        outcomes = yield Request([job.context for job in jobs],
                                 [[job.children[i] for i in subset_members(bits, len(job.children))]
                                  for job, (_, bits) in zip(jobs, owners, strict=True)],
                                 [job.box for job in jobs])
        for (index, bits), outcome in zip(owners, outcomes, strict=True):
            splits[index].scored[bits] = outcome
            counts["passing" if outcome[1] else "failing"] += 1

    def _responsibility(self, results: dict[int, Outcome], count: int) -> list[float]:
        """Degree of responsibility of each child from the outcomes of all subsets.

        A child is credited only where it is *critical*: the subset S passes and S without it fails. ReX's rule
        gives 1/|S| for the smallest such S; the formal rule gives 1/(1+k) with k = count - |S| the occluded
        others (the contingency), i.e. it prefers the largest such S.
        """
        values = [0.0] * count
        for bits, (_, passing) in results.items():
            if not passing or not bits:
                continue
            members = subset_members(bits, count)
            for member in members:
                without = results.get(bits & ~(1 << member))
                if without is None or without[1]:
                    continue
                credit = 1.0 / len(members) if self.rule == "rex" else 1.0 / (1 + count - len(members))
                values[member] = max(values[member], credit)
        return values

    def _descend(
        self, job: _Job, results: dict[int, Outcome], minimum: int, rng: np.random.Generator
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
        members = subset_members(bits, len(job.children))
        jobs = []
        for member in rng.permutation(members).tolist():
            child = job.children[member]
            if child.volume < 2 * minimum:
                continue
            siblings = tuple(job.children[m] for m in members if m != member)
            part = (job.child_parts or {}).get(member)
            jobs.append(_Job(child, job.context + siblings, job.depth + 1, part))
        return jobs


class _Merge:
    """The merge of the per-iteration maps so far, each scaled to peak 1 so that no iteration outweighs the others.

    Within an iteration a part's credit is weighted by `_resolved_depths`: relative to the depth its own
    branch resolved, not to the deepest part anywhere in the iteration. ``additive``: the mean of the
    iteration maps. ``multiplicative``: their geometric mean, with a voxel an iteration never credited
    counted `UNCREDITED_LEVELS` levels below that iteration's peak (the log of 0 would veto it). Iterations are
    added one at a time, so that the merge of every prefix can be read (`map`) for the convergence test.
    """

    def __init__(self, merge: str, spatial: tuple[int, ...], device: torch.device) -> None:
        self.merge = merge
        self.count = 0
        self._total = torch.zeros(spatial, dtype=torch.float32, device=device)
        self._scratch = torch.empty_like(self._total)
        self._floor = 4.0 ** -(LEVEL_POWER * UNCREDITED_LEVELS)

    def add(self, tree: list[_Part]) -> None:
        scratch = self._scratch.zero_()
        for part, resolved in zip(tree, _resolved_depths(tree), strict=True):
            scratch[part.box.slices()] += part.credit * 4.0 ** (LEVEL_POWER * (part.depth - resolved))
        peak = float(scratch.max())
        if peak > 0:
            scratch /= peak
        self._total += scratch if self.merge == "additive" else torch.log(scratch.clamp_(min=self._floor))
        self.count += 1

    def map(self) -> torch.Tensor:
        """The merge of the iterations added so far (*S)."""
        if self.merge == "additive":
            return self._total / self.count
        return (torch.exp(self._total / self.count) - self._floor).clamp(min=0)


class _Convergence:
    """Whether successive merges still change the top of the ranking the explanations are read from.

    Each merge is blurred by `SMOOTH_SIGMA` (as `extract` ranks it) and restricted to the searched box; its top
    set is as large as the region the search resolved (the voxels within `RESOLVED_RATIO` of the blurred peak),
    and the overlap is the share of that top set that the previous merge's top set of the same size holds.
    """

    def __init__(self, root: Box) -> None:
        self._root = root
        self._previous: torch.Tensor | None = None
        self.overlaps: list[float] = []
        self.top_voxels = 0

    def compare(self, merged: torch.Tensor) -> None:
        smooth = gaussian_blur(merged[None, None], SMOOTH_SIGMA)[0, 0][self._root.slices()].flatten()
        top = max(1, int((smooth >= RESOLVED_RATIO * float(smooth.max())).sum()))
        if self._previous is not None:
            before = torch.zeros_like(smooth, dtype=torch.bool)
            before[torch.topk(self._previous, top).indices] = True
            self.overlaps.append(float(before[torch.topk(smooth, top).indices].sum()) / top)
        self._previous, self.top_voxels = smooth, top

    def settled(self) -> bool:
        """Each of the last `STABLE_STEPS` iterations, added to merges of at least `MIN_ITERATIONS`, changed the
        top by less than 1 - `CONVERGED_OVERLAP`."""
        recent = self.overlaps[MIN_ITERATIONS - 1:][-STABLE_STEPS:]
        return len(recent) == STABLE_STEPS and all(overlap >= CONVERGED_OVERLAP for overlap in recent)

    def summary(self) -> dict:
        return {"top_overlap": [round(value, 4) for value in self.overlaps], "top_voxels": self.top_voxels}


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


__all__ = ["MERGES", "RULES", "PartitionSearch", "Request"]
