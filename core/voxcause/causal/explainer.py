"""`CausalResponsibility`: causal responsibility maps and minimal explanations, certified (the explainer).

The stages, in order, on each canvas tried (`auto`): the partition search and merge (`responsibility`), the
explanations read off its ranking (`extract`), the values set by the parts' degrees of responsibility
(`values`), and the certificate (`voxcause.certificate`). Every mutant is scored by one per-call
`mutants.MutantScorer`. The algorithm is told in `voxcause.causal.responsibility`'s docstring.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence

import torch

from ..attribution import Explainer
from ..certificate import KEEP_MARGIN, Certificate, Check, certify
from ..errors import ErrorCode, InputError
from ..explanation import Attribution
from ..progress import PassShare
from ..typing import Progress, Target
from .auto import (
    AUTO_ORDER,
    NORMALISED_ORDER,
    Attempt,
    Canvas,
    FullCheck,
    attempts,
    best_attempt,
    candidate_canvases,
    canvas_order,
    occludable_region,
    reference_canvas,
    undecidable,
)
from .extract import expected_passes, extract
from .mutants import MutantScorer, peak_memory_mb, reach
from .options import RexOptions
from .partition import Box
from .responsibility import PartitionSearch
from .values import break_ties, degrees_of_responsibility, explanation_parts, responsibility_values

# The search does not split a part below MIN_PART_MM on a side (a cube of 8 mm^3 in 3D): on a 0.5 mm CT grid the
# floor is 64 voxels, not 8, so a fine grid is not searched down to single voxels; nor below MIN_PART_VOXELS at
# any spacing, nor below 1/2000 of the searched box (the search's depth stays about 5-6 levels at any size).
MIN_PART_MM = 2.0
MIN_PART_VOXELS = 8


def part_floor(root: Box, spacing: Sequence[float] | None) -> int:
    """The smallest part the search splits, in voxels, for a searched box ``root`` on a grid of ``spacing`` mm."""
    voxel = math.prod(spacing) if spacing else 1.0
    physical = math.ceil(MIN_PART_MM ** len(root.lo) / voxel - 1e-9)
    return max(MIN_PART_VOXELS, math.ceil(root.volume / 2000), physical)


class CausalResponsibility(Explainer):
    """Causal responsibility maps and minimal explanations for any classifier or segmenter.

    Args:
        model: a `voxcause.models.LoadedModel` (any format: the method needs forward passes only).
        iterations: at most this many random partitions to merge (default 10; ReX uses 20, but each of ours
            refines up to ``max_jobs`` boxes per level and still costs about half of its passes); the search
            stops earlier once the merged map has converged (`responsibility._Convergence`).
        rule: ``"rex"`` (1/|S| for parts of a passing subset) or ``"formal"`` (1/(1+k), minimal contingency).
        merge: ``"multiplicative"`` (default: geometric mean, keeps what every iteration found; measured rank
            accuracy 0.70 vs 0.51 additive on the benchmark ball at 64^3) or ``"additive"``.
        occlusion: ``auto`` (default: the baseline of `auto.AUTO_ORDER` that removes evidence without adding
            any, by random-box probes, and the next one when the explanation's certificate fails) | ``constant`` |
            ``min`` | ``mean`` | ``blur`` | ``shuffle`` | ``scramble`` | ``context``; ``occlusion_value`` for constant;
            ``context`` is a (1, C, *S) healthy volume in the model's grid for ``occlusion="context"``.
        min_part_voxels: parts smaller than this are not split further (default `part_floor`: 1/2000 of the
            searched box, at least `MIN_PART_MM` = 2 mm on a side and 8 voxels).
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
    options = RexOptions
    # Set by a caller that searches a crop (`voxcause.crop.FullInputCanvasCheck`): a canvas kind -> None when it
    # removes the evidence from the full input too, else the full input's (score, margin) occluded; asked of every
    # canvas whose fully occluded crop loses the decision (`auto.ordered_canvases`).
    full_input_check: FullCheck | None = None
    # Set by a caller that has scored the image already (its prediction, a crop's finder): its (score, decision
    # holds, margin), not scored again.
    image_outcome: tuple[float, bool, float] | None = None

    # ------------------------------------------------------------------------------------------------
    def _attribute(self, inputs: torch.Tensor, target: Target, progress: Progress | None) -> Attribution:
        """The responsibility map (*S) and masks ``sufficient``, ``contrastive``, ``multiple_k``, certified;
        inputs (1, C, *S) in the model's grid (the base's `attribute` checks them and counts the passes)."""
        model_seconds_before = self.model.forward_seconds
        image = inputs.to(self.model.device)
        spatial = tuple(image.shape[2:])
        foreground, root, occluded = occludable_region(image, within=reach(self.model, target, spatial))
        report = (lambda stage, fraction: None) if progress is None else PassShare(
            progress, lambda: self.model.forward_passes,
            after_search=expected_passes(root.volume, self.explanations, self.max_explanations))
        searched = torch.zeros(spatial, dtype=torch.bool, device=image.device)
        searched[root.slices()] = True
        scorer = MutantScorer(self.model, target, image)
        _, decided, margin = self.image_outcome or scorer.measure(image)[0]
        if not decided:
            raise InputError(
                f"the model does not decide '{target.label}' on this image, so nothing can be responsible for it — "
                "explain the predicted class (omit --target) or use --method occlusion", code=ErrorCode.NOT_DECIDED
            )
        # a canvas must lose the decision by this much, an explanation keep it by as much (`certificate.KEEP_MARGIN`)
        band = scorer.band = KEEP_MARGIN * margin
        # which baselines auto prefers for this network (a forced one is checked against auto's choice)
        order = AUTO_ORDER if self.occlusion == "context" else canvas_order(self.model, image, getattr(target, "box", None))
        only_crop: dict[str, tuple[float, float]] = {}  # canvases that remove the evidence from the crop only

        def full_check(kind: str) -> tuple[float, float] | None:
            kept = self.full_input_check(kind)
            if kept is not None:
                only_crop[kind] = kept
            return kept

        candidates = candidate_canvases(self.occlusion, image, foreground, occluded, root, scorer.measure, band=band,
                                        value=self.occlusion_value, context=self.context, seed=self.seed, order=order,
                                        full_check=full_check if self.full_input_check is not None else None)
        first = next(candidates)
        if not first.removes(band):  # then every canvas has been scored, and none removes the evidence
            reason = undecidable(self.occlusion, target.label, [first, *candidates])
            return self._undecided(first, reason, spatial, image.device)
        warnings = [f"occlusion {kind} removes the evidence from the crop searched but not from the full input "
                    f"(score {score:.3f} with the whole image occluded): not used" for kind, (score, _) in only_crop.items()]

        minimum = self.min_part_voxels or part_floor(root, self.spacing)

        def attempt(index: int, canvas: Canvas) -> Attempt:
            scorer.set_canvas(canvas.image)
            label = "responsibility" if index == 0 else f"responsibility (occlusion {canvas.kind}, try {index + 1})"
            return self._run(scorer, canvas, margin, root, minimum, searched, occluded, order,
                             lambda stage, f, label=label: report(label if stage == "responsibility" else stage, f))

        run, tried_warnings, tried = best_attempt(attempts(itertools.chain([first], candidates), attempt, band))
        warnings.extend(tried_warnings)
        attribution = self._attribution(run, tried, warnings, root, minimum,
                                        self.model.forward_seconds - model_seconds_before, image.device)
        attribution.stats["scale_invariant_model"] = order == NORMALISED_ORDER
        return attribution

    def _attribution(self, run: Attempt, tried: list[dict], warnings: list[str], root: Box, minimum: int,
                     model_seconds: float, device: torch.device) -> Attribution:
        """The `Attribution` of the attempt kept: its map, masks and certificate, and the search's statistics."""
        details = dict(run.details)
        details["occlusion_tried"] = tried
        stats = {
            "model_seconds": model_seconds,
            "passing_mutants": run.counts["passing"],
            "failing_mutants": run.counts["failing"],
            "depth_reached": run.depth,
            "iterations": run.iterations,
            "min_part_voxels": minimum,
            "searched_box": {"lo": list(root.lo), "hi": list(root.hi)},
            "stage_seconds": run.timings,
            "stage_passes": run.passes,
            "peak_memory_mb": peak_memory_mb(device),
            "occlusion_used": run.occlusion,
            "warnings": warnings,
        }
        return Attribution(
            map=run.map, masks=run.masks, stats=stats, details=details, certificate=run.certificate.to_dict()
        )

    def _undecided(self, canvas: Canvas, reason: str, spatial: tuple[int, ...], device: torch.device) -> Attribution:
        """The quick honest answer when occlusion cannot remove the evidence: an empty map, certificate ``fail``
        with the reason, after the probes only (seconds, not whole searches). The check's value is the full
        input's score where a crop's canvas was checked there."""
        score = canvas.on_full[0] if canvas.on_full is not None else canvas.outcome[0]
        check = Check("occluded_loses_decision", score, None, False, "fail", reason)
        stats = {
            "iterations": {"run": 0, "most": self.iterations, "stopped": "undecidable", "top_overlap": []},
            "occlusion_used": canvas.kind,
            "warnings": [],  # the reason is the certificate's, which every front end shows
        }
        details = {"occlusion_tried": [{"occlusion": canvas.kind, "verdict": "fail", "reason": reason}]}
        certificate = Certificate("fail", reason, [check]).to_dict()
        return Attribution(map=torch.zeros(spatial, device=device), masks={}, stats=stats, details=details,
                           certificate=certificate)

    def _run(self, scorer: MutantScorer, canvas: Canvas, margin: float, root: Box, minimum: int,
             searched: torch.Tensor, occluded: torch.Tensor, order: tuple[str, ...], report: Progress,
             ) -> Attempt:
        """One search, extraction and certificate on ``canvas`` (the scorer's); ``margin``: the decision's on the
        image itself."""
        started, passes = time.perf_counter(), self.model.forward_passes
        found = self.search().run(scorer, canvas.outcome, root, minimum, report)
        searched_passes = self.model.forward_passes - passes
        run = self.finish(scorer, canvas, scorer.band, searched, occluded, found, time.perf_counter() - started,
                          order, report, margin=margin)
        run.passes = {"responsibility": searched_passes, **run.passes}
        return run

    def search(self) -> PartitionSearch:
        """The partition search with this explainer's options."""
        return PartitionSearch(self.iterations, self.rule, self.merge, self.max_jobs, self.seed, self.spacing)

    def finish(self, scorer: MutantScorer, canvas: Canvas, band: float, searched: torch.Tensor,
               occluded: torch.Tensor, found: tuple[torch.Tensor, dict, int, dict], seconds: float,
               order: tuple[str, ...], report: Progress, *, margin: float | None = None) -> Attempt:
        """After the search (``found``: `PartitionSearch.run`'s merged map, counts, depth and iterations, in
        ``seconds``): the explanations, the values and the certificate on ``canvas`` (the scorer's). ``margin``:
        the decision's on the image itself when known (the certificate then does not score it again), as the
        canvas's fully occluded outcome is. ``order``: the baselines auto prefers for this model
        (`auto.canvas_order`), whose first clean one a forced canvas is checked against."""
        merged, counts, depth_reached, convergence = found
        # Only occluded voxels were ever intervened on: air inside a credited box (never hidden) is no cause.
        responsibility = merged * occluded
        timings = {"responsibility": seconds}
        passes: dict[str, int] = {}
        masks, details = {}, {}
        if self.explanations:
            step, before = time.perf_counter(), self.model.forward_passes
            masks, details = extract(responsibility, searched, scorer, wanted=self.explanations,
                                     max_explanations=self.max_explanations, report=report)
            timings["extraction"] = time.perf_counter() - step
            passes["extraction"], before = self.model.forward_passes - before, self.model.forward_passes
            explained = [mask for key, mask in masks.items() if key == "sufficient" or key.startswith("multiple_")]
            found = explanation_parts(explained, responsibility)
            degrees = degrees_of_responsibility(found, lambda shown: [ok for _, ok in scorer.masks(shown)])
            passes["values"] = self.model.forward_passes - before
            responsibility = break_ties(responsibility_values(responsibility, found, degrees))
            details["parts"] = [
                {"voxels": int(part.sum()), "responsibility": degree} for part, degree in zip(found, degrees, strict=True)
            ]
        step, before = time.perf_counter(), self.model.forward_passes
        union = None
        for key, mask in masks.items():
            if key.startswith("multiple_") or key == "contrastive":
                union = mask if union is None else union | mask
        reference = reference_canvas(self.occlusion, scorer.image[None], scorer.measure, band=band,
                                     value=self.occlusion_value, seed=self.seed, order=order)
        certificate = certify(
            self.model, scorer.image[None], scorer.target, responsibility, explanation=masks.get("sufficient"),
            removal=union, baseline=canvas.image, searched=occluded, seed=self.seed, reference=reference,
            original=margin, occluded=(canvas.outcome[0], canvas.margin),
        )
        timings["certificate"] = time.perf_counter() - step
        passes["certificate"] = self.model.forward_passes - before
        return Attempt(canvas.kind, responsibility, masks, details, counts, depth_reached, convergence, timings,
                       certificate, passes)


__all__ = ["CausalResponsibility"]
