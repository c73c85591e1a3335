"""What the values of a causal map mean: the degree of responsibility of the explanation part holding a voxel.

The partition search ranks voxels well, but its raw values also record how the random search went: a branch
that happened to be refined one level further, or covered more consistently across iterations, ends up with a
higher value than its equally responsible twin. So the values are set afterwards, by actual causality on the
parts the search found:

1. The parts are the connected components of the extracted explanations (the sufficient one and the
   disjoint alternatives of ``multiple`` no larger than `MAX_ALTERNATIVE_RATIO` times it: a sprawling
   alternative found among the leftovers is no cause the search narrowed down). Components at most
   two voxels apart (a crack closed by a `MERGE_GAP` dilation of each) are one part; a fragment (smaller than
   `FRAGMENT_SHARE` of the largest component or `MIN_PART_VOXELS`) joins the nearest larger component; of
   the rest, the `MAX_PARTS` with most responsibility mass are the parts, and smaller ones join the last.
2. Each part's degree of responsibility is Halpern's 1/(1+k) within these parts, in ReX's world where
   everything else is occluded: k is the fewest other parts that must be occluded (the contingency W) so that
   the decision still holds with W occluded and flips once the part is occluded too. Two parts that are both
   needed (a conjunction) each get 1; two that are each enough (a disjunction) each get 1/2; one cause gets
   1. This costs at most 2^`MAX_PARTS` forward passes (32), usually 2–4.
3. Each part's degree is spread over its voxels in the shape of the search map, so that the map summed over
   a part is proportional to the part's degree: the ranking inside a part is the search's, the mass of a
   part is its responsibility. Voxels outside every part (and parts that are never critical) keep the
   search map scaled by the smallest factor any part received, so nothing outside an explanation outranks
   what it was ranked below. The map is then scaled to peak 1 (only ratios carry meaning).

The map is therefore a density of responsibility: its sum over an explanation part is that part's degree of
responsibility (in units common to the map), whatever depth the random search reached in that part's
branch or how large the minimal part it found there happened to be.

4. Ties are broken (`break_ties`): the search credits boxes, so every voxel of a box shares one value, and a
   box straddling a cause's rim ties its inside with its outside. Adding `TIE_WEIGHT` (1e-3) of the map
   blurred by `TIE_SIGMA` voxels ranks, within a tie, the voxels whose neighbourhood is more responsible
   first, and moves no part's mass by more than 0.1%. Measured on the saved maps of bench/bench_causal.py
   (defaults, seeds 0/100/200): rank accuracy on the trained sphere/cube CNN at 64^3 0.74/0.53/0.48 ->
   0.84/0.55/0.59, on the hand-set ball 0.73/0.64/0.68 -> 0.75/0.75/0.74 (sigma 1.5: about half the gain).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import ndimage

from ..ops import gaussian_blur

MAX_PARTS = 5
TIE_WEIGHT = 1e-3
TIE_SIGMA = 3.0
MAX_ALTERNATIVE_RATIO = 4.0
MERGE_GAP = 1
MIN_PART_VOXELS = 8
FRAGMENT_SHARE = 0.05
Shows = Callable[[list[torch.Tensor]], list[bool]]


def explanation_parts(masks: Sequence[torch.Tensor], weight: torch.Tensor) -> list[torch.Tensor]:
    """Components of the union of ``masks`` (the first is the sufficient explanation, the others alternatives),
    most responsible first, at most `MAX_PARTS`."""
    union = torch.zeros_like(weight, dtype=torch.bool)
    first = int(masks[0].sum()) if masks else 0
    for mask in masks:
        if int(mask.sum()) <= MAX_ALTERNATIVE_RATIO * first:
            union |= mask
    if not bool(union.any()):
        return []
    structure = np.ones((3,) * union.ndim)
    array = union.cpu().numpy()
    labels, count = ndimage.label(ndimage.binary_dilation(array, structure, iterations=MERGE_GAP), structure)
    labels = labels * array
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    main = sizes >= min(sizes.max(), max(MIN_PART_VOXELS, FRAGMENT_SHARE * sizes.max()))
    if not main.all():  # each fragment joins the nearest main component
        core = np.isin(labels, np.flatnonzero(main) + 1)
        nearest = ndimage.distance_transform_edt(~core, return_distances=False, return_indices=True)
        labels = np.where(array, labels[tuple(nearest)], 0)
    labels_t = torch.from_numpy(labels).to(weight.device)
    mass = torch.zeros(count + 1, device=weight.device).index_add_(
        0, labels_t.flatten().long(), weight.flatten().float()
    )
    present = set(np.unique(labels).tolist()) - {0}
    order = [label for label in (torch.argsort(mass[1:], descending=True) + 1).tolist() if label in present]
    parts = [labels_t == label for label in order[:MAX_PARTS]]
    for label in order[MAX_PARTS:]:
        parts[-1] |= labels_t == label
    return parts


def degrees_of_responsibility(parts: Sequence[torch.Tensor], shows: Shows) -> list[float]:
    """1/(1+k) per part, k the smallest contingency among the other parts (0.0: never critical).

    ``shows(masks)`` scores mutants in which only the voxels of each mask are visible and returns whether the
    decision holds in each.
    """
    count = len(parts)
    if count == 0:
        return []
    subsets = list(range(1 << count))
    visible = []
    for bits in subsets:
        mask = torch.zeros_like(parts[0])
        for index in range(count):
            if bits >> index & 1:
                mask |= parts[index]
        visible.append(mask)
    holds = dict(zip(subsets, shows(visible), strict=True))
    everything = (1 << count) - 1
    degrees = []
    for index in range(count):
        others = [other for other in range(count) if other != index]
        best = None
        for size in range(len(others) + 1):
            for contingency in _combinations(others, size):
                shown = everything & ~contingency
                if holds[shown] and not holds[shown & ~(1 << index)]:
                    best = size
                    break
            if best is not None:
                break
        degrees.append(0.0 if best is None else 1.0 / (1 + best))
    return degrees


def responsibility_values(
    search_map: torch.Tensor, parts: Sequence[torch.Tensor], degrees: Sequence[float]
) -> torch.Tensor:
    """The final map: each part's mass set to its degree; the rest scaled by the smallest factor; peak 1."""
    scales = []
    for part, degree in zip(parts, degrees, strict=True):
        mass = float(search_map[part].sum()) if bool(part.any()) else 0.0
        scales.append(degree / mass if degree > 0 and mass > 0 else None)
    known = [scale for scale in scales if scale is not None]
    if not known:
        return search_map
    values = search_map * min(known)
    for part, scale in zip(parts, scales, strict=True):
        if scale is not None:
            values = torch.where(part, search_map * scale, values)
    peak = float(values.max())
    return values / peak if peak > 0 else values


def break_ties(values: torch.Tensor) -> torch.Tensor:
    """``values`` plus `TIE_WEIGHT` of their `TIE_SIGMA` blur on the positive voxels, peak 1 (see step 4)."""
    positive = values > 0
    if not bool(positive.any()):
        return values
    blurred = gaussian_blur(values[None, None].float(), TIE_SIGMA)[0, 0]
    ranked = values + TIE_WEIGHT * blurred / max(float(blurred.max()), 1e-30) * positive
    return ranked / float(ranked.max())


def _combinations(items: list[int], size: int):
    from itertools import combinations

    for chosen in combinations(items, size):
        bits = 0
        for item in chosen:
            bits |= 1 << item
        yield bits
