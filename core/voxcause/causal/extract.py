"""Explanations read off a responsibility map: the sufficient, the contrastive and multiple disjoint ones.

The sufficient and the contrastive explanation come from one ranking of the searched voxels (responsible voxels
first, then the rest, each by the tie-broken map), so they share its mutants: the contrastive one is the
smallest top set that is sufficient *and* whose removal loses the decision, so its search starts where the
sufficient one ended. Alternatives (``multiple``) are searched among the responsible voxels left over, away from
the explanations already found. Every score reported is one the search already made.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection

import torch

from ..ops import dilate, gaussian_blur
from ..typing import Progress
from .mutants import MutantScorer, Outcome
from .search import prune_components, rank_voxels, smallest_passing
from .values import MAX_ALTERNATIVE_RATIO

KINDS = ("sufficient", "contrastive", "multiple")
# The map blurred by SMOOTH_SIGMA voxels breaks ties in the ranking and ranks the search for each alternative
# (multiple explanations), which looks among up to ALTERNATIVE_SEARCH_RATIO times the first's size of the
# remaining voxels. Measured on the disjunctive known-cause pairs (32^3 and 48^3, seeds 0-4, 10 iterations):
# the raw map, or a search capped at MAX_ALTERNATIVE_RATIO, missed the twin at 2 of 20 cases (first part's share
# 0.97-0.99); this finds it in all.
SMOOTH_SIGMA = 1.5
ALTERNATIVE_SEARCH_RATIO = 4 * MAX_ALTERNATIVE_RATIO


class _Outcomes:
    """Mutant outcomes by size n along one ranking, each scored once (the searches revisit sizes)."""

    def __init__(self, evaluate: Callable[[list[int]], list[Outcome]]) -> None:
        self._evaluate = evaluate
        self._known: dict[int, Outcome] = {}

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


def expected_passes(searched: int, wanted: Collection[str], max_explanations: int) -> float:
    """About how many forward passes `extract` and what follows it (degrees of responsibility, certificate) take,
    for the progress bar (`voxcause.progress.PassShare`): each of its binary searches gallops and bisects over the
    ranking in about log2 of the ``searched`` voxels single-mutant passes; the sufficient and the contrastive
    explanation take one each, every alternative two. Measured 48-83 passes on the known-cause classifier and the
    sample classifier and segmenter, against 51-87 here."""
    searches = len(set(wanted) & {"sufficient", "contrastive"}) + ("multiple" in wanted) * 2 * (max_explanations - 1)
    return EXTRACTION_PASSES_PER_SEARCH_LEVEL * math.log2(max(searched, 2)) * max(searches, 1)


#: Single-mutant passes per log2 of the searched voxels and binary search (fitted: see `expected_passes`).
EXTRACTION_PASSES_PER_SEARCH_LEVEL = 0.7


def extract(
    responsibility: torch.Tensor,
    searched: torch.Tensor,
    scorer: MutantScorer,
    *,
    wanted: Collection[str],
    max_explanations: int,
    report: Progress,
) -> tuple[dict[str, torch.Tensor], dict]:
    """The explanations of ``wanted`` (any of `KINDS`) from the map, as masks ``sufficient``, ``contrastive``,
    ``multiple_k`` (*S) and what each scored (``details``).

    Args:
        responsibility: (*S) the search map; searched: (*S) bool voxels that may be part of an explanation.
        scorer: the call's mutant scorer, its canvas set.
        max_explanations: at most this many disjoint sufficient explanations for ``multiple``.
        report: ``callback(stage, fraction)``.
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
            trial_score, ok = scorer.masks([trial])[0]
            if ok:
                kept_score[0] = trial_score
            return ok

        mask = prune_components(mask, responsibility, keeps)
        return mask, kept_score[0]

    def sufficient_in(pool: torch.Tensor, largest: int, order: torch.Tensor) -> tuple[torch.Tensor, float] | None:
        """The smallest top set of ``pool`` by ``order`` (at most ``largest`` voxels) that keeps the decision,
        pruned."""
        rank, count = rank_voxels(order, pool)
        shown = _Outcomes(lambda ns: scorer.ranked(rank, ns, keep=True))
        n = smallest_passing(shown.decisions, min(count, int(largest)))
        return None if n is None else pruned((rank >= 0) & (rank < n), shown.score(n))

    wanted = set(wanted)
    if not wanted & set(KINDS):
        return masks, details
    report("sufficient explanation", 0.96)
    bonus = candidates.float() * (float(key.max()) + 1.0)  # responsible voxels rank before the rest
    rank, count = rank_voxels(key + bonus, searched)
    shown = _Outcomes(lambda ns: scorer.ranked(rank, ns, keep=True))
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
        removed = _Outcomes(lambda ns: scorer.ranked(rank, ns, keep=False))
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
        while len(found) < max_explanations:
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


__all__ = ["KINDS", "expected_passes", "extract"]
