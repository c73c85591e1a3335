"""The faithfulness benchmark: every method on every case, measured the same way.

For each case (an input on the model grid, a target, optionally a reference mask) and each method:

* localisation against the reference mask (or the target region): pointing game, positive mass inside,
  rank accuracy, off-target leakage (positive mass outside the region dilated by 2 voxels);
* faithfulness: deletion / insertion AUCs per baseline (constant, blur, inpaint) and the same for a random
  ranking, their gaps (``*_gain``: how much better than random, higher = better), and the faithfulness
  correlation (Bhatt et al.);
* robustness: Spearman and top-5% IoU between the map and the map of a perturbed input (noise, scale,
  gamma, 1 and 2 voxel shifts);
* cost: wall seconds, forward (samples) and backward passes, peak memory;
* with ``sanity``: ``sanity_abs_rho``, |Spearman| between the map and the map of the fully randomised model for
  the same target (`voxcause.evaluate.sanity`; lower = the map depends more on the model; one more map each).

Rows come back as plain dicts (one per case and method, plus a ``random`` reference row per case); see
``voxcause.evaluate.report`` for the CSV / Markdown / plots.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..explainers import explainer_class, make_explainer
from ..models.loaded import resolve_device
from ..targets import RegionTarget
from ..typing import Target
from .curves import BASELINES, Curve, curves_for, random_reference
from .metrics import (
    faithfulness_correlation,
    off_target_leakage,
    pointing_game,
    relevance_mass,
    relevance_rank_accuracy,
)
from .robustness import PERTURBATIONS, robustness
from .runtime import measure
from .sanity import random_model_map, rank_correlation


@dataclass
class Case:
    """One benchmark case on the model grid: ``inputs`` (1, C, *S), a target, an optional reference ``mask``."""

    id: str
    inputs: torch.Tensor
    target: Target
    mask: torch.Tensor | None = None


@dataclass
class BenchmarkResult:
    """``rows``: one dict per (case, method) incl. ``random``; ``curves``: {(case, method, kind, baseline): Curve}."""

    rows: list[dict] = field(default_factory=list)
    curves: dict[tuple[str, str, str, str], Curve] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)


def _score_fn(model: Any, target: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    def score(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return target.score(model.predict(batch))

    return score


def _shifted_target(target: Target, shift: int) -> Target:
    """The target for an input moved by ``shift`` voxels: a region moves with the image."""
    if not isinstance(target, RegionTarget) or not shift:
        return target
    region = target.region
    moved = torch.roll(region, shifts=(shift,) * region.dim(), dims=tuple(range(region.dim())))
    return dataclasses.replace(target, region=moved)


def _localisation(attribution: torch.Tensor, reference: torch.Tensor | None) -> dict:
    if reference is None or not bool(torch.as_tensor(reference).any()) or _flat(attribution):
        # no reference, or a flat map (all voxels tie for the maximum): nothing is localised
        nan = float("nan")
        return {"pointing_game": nan, "mass_inside": nan, "rank_accuracy": nan, "leakage": nan}
    positive = torch.clamp(attribution, min=0)
    return {
        "pointing_game": pointing_game(attribution, reference),
        "mass_inside": relevance_mass(positive, reference),
        "rank_accuracy": relevance_rank_accuracy(attribution, reference),
        "leakage": off_target_leakage(attribution, reference, dilation=2),
    }


def _randomized_model(model: Any, seed: int) -> Any:
    from ..models import LoadedModel
    from ..models.randomize import randomized

    if not isinstance(model, LoadedModel):
        raise InputError("--sanity needs a model voxcause loaded (a file, card, bundle or nnU-Net folder)")
    return randomized(model, 1.0, seed=seed)


def _flat(attribution: torch.Tensor) -> bool:
    return bool(attribution.max() == attribution.min())


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _curve_numbers(curves: dict, reference: dict) -> dict:
    row = {}
    for (kind, baseline), curve in curves.items():
        short = "del" if kind == "deletion" else "ins"
        row[f"{short}_auc_{baseline}"] = curve.auc
        ref = reference[(kind, baseline)].auc
        row[f"{short}_gain_{baseline}"] = (ref - curve.auc) if kind == "deletion" else (curve.auc - ref)
    return row


def run_benchmark(
    model: Any,
    cases: list[Case],
    methods: list[str],
    *,
    options: dict[str, dict] | None = None,
    baselines: tuple[str, ...] = BASELINES,
    steps: int = 20,
    random_repeats: int = 3,
    perturbations: tuple[str, ...] = PERTURBATIONS,
    faithfulness_runs: int = 32,
    faithfulness_fraction: float = 0.05,
    seed: int = 0,
    device: str = "auto",
    progress: Callable[[str, float], None] | None = None,
    sanity: bool = False,
) -> BenchmarkResult:
    """Run ``methods`` on ``cases`` with ``model`` (a LoadedModel or anything with ``predict``).

    Args:
        options: per-method constructor options, e.g. ``{"occlusion": {"cell": 8}}``.
        baselines: curve baselines (``constant``, ``blur``, ``inpaint``). steps: points per curve - 1.
        random_repeats: random rankings averaged for the reference curves.
        perturbations: robustness perturbations (empty: skip robustness; each costs one more explanation).
        faithfulness_runs / faithfulness_fraction: random subsets and their size (share of voxels).
        sanity: also explain with a fully randomised copy of the model (a `LoadedModel`) and report
            ``sanity_abs_rho``.
    """
    if not cases:
        raise InputError("the benchmark needs at least one case: list images in the manifest")
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise InputError(f"unknown baseline(s) {', '.join(unknown)}: use {', '.join(BASELINES)}")
    for method in methods:
        explainer_class(method)
    options = options or {}
    device = str(getattr(model, "device", None) or resolve_device(device))  # a LoadedModel's own device
    result = BenchmarkResult(
        settings={
            "methods": list(methods),
            "baselines": list(baselines),
            "steps": steps,
            "random_repeats": random_repeats,
            "perturbations": list(perturbations),
            "faithfulness_runs": faithfulness_runs,
            "faithfulness_fraction": faithfulness_fraction,
            "seed": seed,
            "device": device,
            "sanity": sanity,
        }
    )
    random_model = _randomized_model(model, seed) if sanity else None
    total = len(cases) * (len(methods) + 1)
    done = 0
    for case in cases:
        score = _score_fn(model, case.target)
        reference_mask = case.mask if case.mask is not None else getattr(case.target, "region", None)
        original = float(score(case.inputs)[0])
        random_curves = random_reference(
            score, case.inputs, baselines=baselines, steps=steps, repeats=random_repeats, seed=seed
        )
        row = {"case": case.id, "method": "random", "score": original}
        row.update({f"{'del' if k == 'deletion' else 'ins'}_auc_{b}": c.auc for (k, b), c in random_curves.items()})
        result.rows.append(row)
        for (kind, baseline), curve in random_curves.items():
            result.curves[(case.id, "random", kind, baseline)] = curve
        done += 1
        for method in methods:
            if progress is not None:
                progress(f"benchmark: {case.id} / {method}", done / total)
            explainer = make_explainer(method, model, options.get(method), supplied={"seed": seed})
            before = getattr(model, "forward_passes", 0)
            attribution, cost = measure(
                lambda explainer=explainer, case=case: explainer.attribute(case.inputs, target=case.target),
                device=device,
            )
            stats = attribution.stats
            amap = attribution.map.detach().float().cpu()
            row = {
                "case": case.id,
                "method": method,
                "score": original,
                "layer": stats.get("layer", ""),
                "seconds": cost["seconds"],
                "peak_mb": cost["peak_mb"],
                "forward_passes": stats.get("forward_passes", getattr(model, "forward_passes", 0) - before),
                "backward_passes": stats.get("backward_passes", 0),
                "flat_map": _flat(amap),
            }
            row.update(_localisation(amap, reference_mask))
            curves = curves_for(score, case.inputs, amap, baselines=baselines, steps=steps, seed=seed)
            row.update(_curve_numbers(curves, random_curves))
            for (kind, baseline), curve in curves.items():
                result.curves[(case.id, method, kind, baseline)] = curve
            n = int(np.prod(amap.shape))
            if faithfulness_runs > 1:
                row["faithfulness_corr"] = faithfulness_correlation(
                    score,
                    case.inputs,
                    amap,
                    subset_size=max(1, int(round(faithfulness_fraction * n))),
                    runs=faithfulness_runs,
                    rng=np.random.RandomState(seed),
                )
            if perturbations:

                def explain_changed(changed: torch.Tensor, shift: int, method=method, case=case) -> torch.Tensor:
                    again = make_explainer(method, model, options.get(method), supplied={"seed": seed})
                    return again.attribute(changed, target=_shifted_target(case.target, shift)).map.detach().float().cpu()

                numbers = robustness(explain_changed, case.inputs, amap, perturbations=perturbations, seed=seed)
                for name in perturbations:
                    row[f"rob_{name}_spearman"] = numbers[name]["spearman"]
                    row[f"rob_{name}_iou"] = numbers[name]["top5_iou"]
                row["rob_spearman"] = _nanmean([row[f"rob_{p}_spearman"] for p in perturbations])
                row["rob_iou"] = _nanmean([row[f"rob_{p}_iou"] for p in perturbations])
            if random_model is not None:
                other = make_explainer(method, random_model, options.get(method), supplied={"seed": seed})
                random_map, _, _ = random_model_map(
                    lambda other=other, case=case: other.attribute(case.inputs, target=case.target).map.detach().float()
                    .cpu().numpy(), amap.numpy())
                row["sanity_abs_rho"] = abs(rank_correlation(amap.numpy(), random_map))
            result.rows.append(row)
            done += 1
    if progress is not None:
        progress("benchmark: done", 1.0)
    return result
