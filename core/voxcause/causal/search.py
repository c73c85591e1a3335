"""Extracting explanations from a ranking: sufficient, contrastive and multiple disjoint ones.

A ranking orders the candidate voxels (inside the searched box) by responsibility. "Top-n visible, the rest
occluded" is a mutant; the smallest n whose mutant keeps the decision is found by exponential then binary
search — O(log N) forward passes instead of ReX's chunked linear scan — and then pruned component by
component so an explanation made of two blobs keeps only the blobs it needs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy import ndimage

Predicate = Callable[[list[int]], list[bool]]


def smallest_passing(predicate: Predicate, total: int, *, start: int = 1) -> int | None:
    """Smallest n in start..total with predicate(n) true, assuming monotonicity; None if even ``total`` fails.

    ``predicate`` takes a list of n values and returns their outcomes (so callers can batch them). Galloping
    from ``start`` (start, start + 1, start + 3, start + 7, ...), then bisecting: O(log(answer - start)) calls.
    """
    if total <= 0 or start > total:
        return None
    previous, step = start - 1, 1
    while True:
        n = min(start - 1 + step, total)
        if predicate([n])[0]:
            break
        if n == total:
            return None
        previous, step = n, step * 2
    low, high = previous, n  # predicate(low) false (or low = start - 1, below the range), predicate(high) true
    while high - low > 1:
        middle = (low + high) // 2
        if predicate([middle])[0]:
            high = middle
        else:
            low = middle
    return high


def rank_voxels(key: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Rank candidate voxels by descending ``key``: returns an int32 (*S) rank (-1 outside candidates) and N."""
    flat_key = key.flatten()
    indices = torch.nonzero(candidates.flatten()).flatten()
    order = indices[torch.argsort(flat_key[indices], descending=True, stable=True)]
    rank = torch.full((flat_key.numel(),), -1, dtype=torch.int32, device=key.device)
    rank[order] = torch.arange(order.numel(), dtype=torch.int32, device=key.device)
    return rank.reshape(key.shape), int(order.numel())


def prune_components(
    mask: torch.Tensor, weight: torch.Tensor, keeps: Callable[[torch.Tensor], bool], *, max_components: int = 16
) -> torch.Tensor:
    """Drop connected components of ``mask`` (least responsible first) while ``keeps`` stays true."""
    labels, count = ndimage.label(mask.cpu().numpy(), structure=np.ones((3,) * mask.ndim))
    if count <= 1:
        return mask
    labels_t = torch.from_numpy(labels).to(mask.device)
    mass = torch.zeros(count + 1, device=mask.device).index_add_(0, labels_t.flatten().long(), weight.flatten().float())
    order = torch.argsort(mass[1:]).tolist()[:max_components]
    current = mask.clone()
    for component in order:
        trial = current & (labels_t != component + 1)
        if trial.any() and keeps(trial):
            current = trial
    return current
