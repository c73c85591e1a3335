"""Deletion and insertion curves of the target score, with constant, blur and inpainting baselines.

Voxels are ranked by the map (highest first, ties broken at random with the seed). At fraction f of the
voxels:

* deletion: the top-f voxels take the baseline value, the rest keep the input (a faithful map makes the
  score fall fast: a *low* area under the curve is good);
* insertion: the top-f voxels keep the input, the rest take the baseline (a faithful map makes the score
  rise fast: a *high* area is good).

Baselines (all channels of a voxel together, on the normalised model input):

* ``constant``: 0 (mean tissue after z-scoring);
* ``blur``: a Gaussian of ``sigma`` voxels of the input (keeps coarse anatomy, removes detail);
* ``inpaint``: the removed voxels are harmonically infilled from the kept ones with
  ``voxcause.counterfactual.inpaint.remove_region`` (no dilation, no noise), so nothing out of distribution
  (a hole, a blur) is left; it falls back to ``blur`` when that module is absent or a fill is impossible
  (nothing kept). This is the slow one: one sparse solve per point of the curve.

A random ranking gives the reference curve every map should beat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..removal import canvas
from .metrics import auc

BASELINES = ("constant", "blur", "inpaint")
Score = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Curve:
    """One curve: ``fractions`` (steps + 1 values in [0, 1]) and the target ``scores`` there."""

    kind: str
    baseline: str
    fractions: np.ndarray
    scores: np.ndarray

    @property
    def auc(self) -> float:
        return auc(self.fractions, self.scores)


def ranking(attribution, *, seed: int = 0) -> np.ndarray:
    """Voxel indices, highest attribution first; ties in random order (seeded), so flat maps rank at random."""
    a = attribution.detach().cpu().numpy() if isinstance(attribution, torch.Tensor) else np.asarray(attribution)
    a = a.astype(np.float64).ravel()
    jitter = np.random.default_rng(seed).random(a.size)
    return np.lexsort((jitter, -a))


def _inpainter():
    try:
        from ..counterfactual.inpaint import remove_region
    except ImportError:  # pragma: no cover - the counterfactual helper's module is optional here
        return None
    return remove_region


def _fill(inputs: torch.Tensor, removed: np.ndarray, fallback: torch.Tensor, remove_region) -> torch.Tensor:
    """``inputs`` with the ``removed`` voxels inpainted; ``fallback`` values where inpainting is impossible."""
    if remove_region is None or not removed.any() or removed.all():
        return torch.where(torch.from_numpy(removed).to(inputs.device), fallback[0], inputs[0])
    image = inputs[0].detach().cpu().numpy()
    try:
        result = remove_region(image, removed, dilate_mm=0.0, noise=False, foreground=np.ones_like(removed))
    except (InputError, ValueError, RuntimeError):
        return torch.where(torch.from_numpy(removed).to(inputs.device), fallback[0], inputs[0])
    return torch.from_numpy(result.array).to(inputs.device)


def perturbation_curve(
    score: Score,
    inputs: torch.Tensor,
    order: np.ndarray,
    *,
    kind: str = "deletion",
    baseline: str = "constant",
    steps: int = 20,
    sigma: float = 4.0,
    batch_size: int = 8,
) -> Curve:
    """Score ``inputs`` (1, C, *S) as the ranked voxels are deleted or inserted, at ``steps`` + 1 fractions.

    Args:
        score: batch (B, C, *S) -> target score (B,).
        order: voxel indices, most important first (see :func:`ranking`).
        kind: ``"deletion"`` or ``"insertion"``. baseline: ``constant``, ``blur`` or ``inpaint``.
    """
    if kind not in ("deletion", "insertion"):
        raise InputError(f"unknown curve {kind!r}: use deletion or insertion")
    if baseline not in BASELINES:
        raise InputError(f"unknown baseline {baseline!r}: use one of {', '.join(BASELINES)}")
    spatial = tuple(inputs.shape[2:])
    n = int(np.prod(spatial))
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * n).astype(int)
    remove_region = _inpainter() if baseline == "inpaint" else None
    flat_fallback = canvas(inputs, "blur" if baseline != "constant" else "zero", blur_sigma=sigma)
    rank_of = np.empty(n, dtype=np.int64)
    rank_of[order] = np.arange(n)
    rank_map = rank_of.reshape(spatial)
    scores: list[float] = []
    with torch.no_grad():
        for i in range(0, len(counts), batch_size):
            images = []
            for k in counts[i : i + batch_size]:
                top = rank_map < k  # the k highest-ranked voxels
                removed = top if kind == "deletion" else ~top
                if baseline == "inpaint":
                    images.append(_fill(inputs, removed, flat_fallback, remove_region))
                else:
                    mask = torch.from_numpy(removed).to(inputs.device)
                    images.append(torch.where(mask, flat_fallback[0], inputs[0]))
            scores.extend(score(torch.stack(images)).float().cpu().tolist())
    return Curve(kind, baseline, fractions, np.asarray(scores))


def curves_for(
    score: Score,
    inputs: torch.Tensor,
    attribution,
    *,
    baselines: tuple[str, ...] = ("constant", "blur"),
    steps: int = 20,
    seed: int = 0,
    batch_size: int = 8,
) -> dict[tuple[str, str], Curve]:
    """Deletion and insertion curves for every baseline: {(kind, baseline): Curve}."""
    order = ranking(attribution, seed=seed)
    out = {}
    for baseline in baselines:
        for kind in ("deletion", "insertion"):
            out[(kind, baseline)] = perturbation_curve(
                score, inputs, order, kind=kind, baseline=baseline, steps=steps, batch_size=batch_size
            )
    return out


def random_reference(
    score: Score,
    inputs: torch.Tensor,
    *,
    baselines: tuple[str, ...] = ("constant", "blur"),
    steps: int = 20,
    repeats: int = 3,
    seed: int = 0,
    batch_size: int = 8,
) -> dict[tuple[str, str], Curve]:
    """The curves of a random ranking, averaged over ``repeats`` seeds: the bar every map must clear."""
    n = int(np.prod(inputs.shape[2:]))
    sums: dict[tuple[str, str], Curve] = {}
    for r in range(repeats):
        order = np.random.default_rng(seed + 1000 * (r + 1)).permutation(n)
        for baseline in baselines:
            for kind in ("deletion", "insertion"):
                c = perturbation_curve(
                    score, inputs, order, kind=kind, baseline=baseline, steps=steps, batch_size=batch_size
                )
                key = (kind, baseline)
                if key in sums:
                    sums[key].scores = sums[key].scores + c.scores
                else:
                    sums[key] = c
    for c in sums.values():
        c.scores = c.scores / repeats
    return sums
