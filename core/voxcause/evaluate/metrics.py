"""Map-quality numbers on one attribution map: localisation, ranking, faithfulness and agreement.

All functions take numpy arrays or tensors of the same spatial shape (any number of axes) and compute
on the flattened map, so they are N-D. Definitions follow Quantus 0.6.0 where it has the metric (a test
checks the numbers agree on 3D input):

* ``pointing_game``: 1 if a voxel holding the map's maximum lies in the region, else 0 (NaN: empty region).
* ``relevance_mass``: sum of the map inside the region / sum of the whole map (Arras et al.; on the map as
  given — pass ``np.clip(map, 0, None)`` for the positive mass, as the benchmark does).
* ``relevance_rank_accuracy``: share of the top-|R| voxels that lie in the region R.
* ``off_target_leakage``: positive mass outside the region dilated by ``dilation`` voxels / total positive mass.
* ``faithfulness_correlation``: Pearson correlation, over random voxel subsets, between the attribution
  summed over the subset and the score drop when the subset is set to the baseline (Bhatt et al. 2020).
* ``spearman`` (ties averaged) and ``top_fraction_iou`` compare two maps (robustness); both are NaN for a
  flat map, which has no ranking.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy import ndimage, stats

from ..errors import InputError


def _np(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def _pair(attribution, region) -> tuple[np.ndarray, np.ndarray]:
    a = _np(attribution).ravel()
    r = np.asarray(region.detach().cpu().numpy() if isinstance(region, torch.Tensor) else region).astype(bool)
    if r.size != a.size:
        raise InputError(f"map has {a.size} voxels but the region has {r.size}: put both on the same grid")
    return a, r.ravel()


def dice(a, b) -> float:
    """Dice overlap 2|A and B| / (|A| + |B|) of two masks (arrays or tensors); 1.0 when both are empty.

    Raises:
        InputError: the masks have different shapes (the message names the fix: resample one).
    """
    a, b = _np(a).astype(bool), _np(b).astype(bool)
    if a.shape != b.shape:
        raise InputError(f"mask shapes differ: {a.shape} and {b.shape} — resample one onto the other's grid first")
    denominator = int(a.sum()) + int(b.sum())
    return 1.0 if denominator == 0 else 2.0 * int((a & b).sum()) / denominator


def pointing_game(attribution, region) -> float:
    """1.0 if a maximum of the map lies inside ``region``, 0.0 if not, NaN for an empty region."""
    a, r = _pair(attribution, region)
    if not r.any():
        return float("nan")
    return float(np.any(r & (a == a.max())))


def relevance_mass(attribution, region) -> float:
    """Sum of the map inside ``region`` over the map's total (NaN for an empty region or zero total)."""
    a, r = _pair(attribution, region)
    total = a.sum()
    if not r.any() or total == 0:
        return float("nan")
    return float(a[r].sum() / total)


def relevance_rank_accuracy(attribution, region) -> float:
    """Share of the |R| highest-ranked voxels that are in R (descending order, ties by index)."""
    a, r = _pair(attribution, region)
    k = int(r.sum())
    if k == 0:
        return float("nan")
    top = np.argsort(-a, kind="stable")[:k]
    return float(r[top].sum() / k)


def off_target_leakage(attribution, region, *, dilation: int = 2) -> float:
    """Positive attribution mass outside ``region`` grown by ``dilation`` voxels, over the total positive mass."""
    a, r = _pair(attribution, region)
    shape = np.asarray(region.shape if not isinstance(region, torch.Tensor) else tuple(region.shape))
    grown = ndimage.binary_dilation(r.reshape(shape), iterations=dilation) if dilation > 0 else r.reshape(shape)
    positive = np.clip(a, 0, None)
    total = positive.sum()
    if not r.any() or total == 0:
        return float("nan")
    return float(positive[~grown.ravel()].sum() / total)


def faithfulness_correlation(
    score: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    attribution,
    *,
    subset_size: int,
    runs: int = 32,
    baseline: float | torch.Tensor = 0.0,
    rng: np.random.RandomState | None = None,
    batch_size: int = 16,
) -> float:
    """Pearson correlation between attribution sums and score drops over ``runs`` random voxel subsets.

    Args:
        score: maps a batch (B, C, *S) to the target score (B,).
        inputs: (1, C, *S); every channel of a chosen voxel is set to ``baseline`` (scalar or (1, C, *S)).
        attribution: (*S) map.
        subset_size: voxels per subset. rng: a ``np.random.RandomState`` (subsets are drawn with
            ``rng.choice(n, subset_size, replace=False)``, the draw Quantus makes with the global state).
    """
    a = _np(attribution).ravel()
    n = a.size
    if not 0 < subset_size <= n:
        raise InputError(f"subset_size {subset_size} must be between 1 and the number of voxels ({n})")
    rng = rng if rng is not None else np.random.RandomState(0)
    subsets = [rng.choice(n, subset_size, replace=False) for _ in range(runs)]
    with torch.no_grad():
        original = float(score(inputs)[0])
        flat_inputs = inputs.reshape(1, inputs.shape[1], -1)
        base = baseline if isinstance(baseline, torch.Tensor) else torch.full_like(inputs, float(baseline))
        flat_base = base.reshape(1, inputs.shape[1], -1)
        drops: list[float] = []
        for i in range(0, runs, batch_size):
            chunk = subsets[i : i + batch_size]
            batch = flat_inputs.repeat(len(chunk), 1, 1)
            for j, idx in enumerate(chunk):
                index = torch.as_tensor(idx, device=batch.device)
                batch[j, :, index] = flat_base[0][:, index]
            drops.extend((original - score(batch.reshape(len(chunk), *inputs.shape[1:]))).float().cpu().tolist())
    sums = np.array([a[idx].sum() for idx in subsets])
    drops_arr = np.asarray(drops)
    if sums.std() == 0 or drops_arr.std() == 0:
        return float("nan")
    return float(np.corrcoef(sums, drops_arr)[0, 1])


def spearman(a, b, *, mask=None) -> float:
    """Spearman rank correlation of two maps (ties averaged), optionally over ``mask`` only."""
    x, y = _np(a).ravel(), _np(b).ravel()
    if mask is not None:
        keep = np.asarray(mask).astype(bool).ravel()
        x, y = x[keep], y[keep]
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def top_fraction_mask(values, fraction: float) -> np.ndarray:
    """Bool mask of the top ``fraction`` of voxels (at least one), ties by index."""
    v = _np(values).ravel()
    k = max(1, int(round(fraction * v.size)))
    out = np.zeros(v.size, bool)
    out[np.argsort(-v, kind="stable")[:k]] = True
    return out


def top_fraction_iou(a, b, *, fraction: float = 0.05, mask=None) -> float:
    """Intersection over union of the two maps' top-``fraction`` voxel sets (optionally inside ``mask``)."""
    x, y = _np(a).ravel(), _np(b).ravel()
    if mask is not None:
        keep = np.asarray(mask).astype(bool).ravel()
        x, y = x[keep], y[keep]
    if x.size == 0 or x.min() == x.max() or y.min() == y.max():
        return float("nan")  # a flat map has no top set: its "top 5%" would be arbitrary voxels
    ta, tb = top_fraction_mask(x, fraction), top_fraction_mask(y, fraction)
    union = (ta | tb).sum()
    return float((ta & tb).sum() / union) if union else float("nan")


def auc(fractions, scores) -> float:
    """Area under a curve sampled at ``fractions`` in [0, 1] (trapezoid rule)."""
    f, s = np.asarray(fractions, float), np.asarray(scores, float)
    return float(np.sum((f[1:] - f[:-1]) * (s[1:] + s[:-1]) / 2))
