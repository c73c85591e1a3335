"""Turning a continuous map into display levels (labelmaps for Slicer and MONAI Label).

A responsibility map spans many orders of magnitude (the causal search weighs each level of refinement 64x
the one above), so linear bins of its values put nearly every voxel in the lowest bin and leave the top bins
with a handful. Levels are therefore cut by *rank* among the voxels worth painting, those within `FLOOR` of
the peak (a millionth: on a causal map the rest is search noise; a saliency map rarely spans that much):
level >= k holds the top ``lowest_share * ratio**-(k-1)`` of them, so the bands are nested (each level's
region contains the next), shrink geometrically (with the defaults 50%, 20%, 8%, 3.2%, 1.3%) and the top
band holds the most responsible voxels. Voxels tied in value always share a level; when ties would leave a band empty
its cut moves to the next distinct value, so every band is non-empty whenever the map has at least as many
distinct positive values as there are levels. A labelmap stores the bands disjointly: a voxel's label is
the highest level containing it.
"""

from __future__ import annotations

import numpy as np

HEAT = [(0.50, 0.0, 0.0), (0.80, 0.10, 0.0), (1.0, 0.40, 0.0), (1.0, 0.70, 0.0), (1.0, 1.0, 0.30), (1.0, 1.0, 0.75)]
FLOOR = 1e-6
LOWEST_SHARE = 0.5
RATIO = 2.5


def heat_colour(level: int, levels: int) -> tuple[float, float, float]:
    """Colour of ``level`` (1..levels) on a dark-red-to-yellow heat scale."""
    position = (level - 1) / max(levels - 1, 1) * (len(HEAT) - 1)
    low = int(np.floor(position))
    high = min(low + 1, len(HEAT) - 1)
    weight = position - low
    return tuple(float((1 - weight) * a + weight * b) for a, b in zip(HEAT[low], HEAT[high], strict=True))


def grey_colour(level: int, levels: int) -> tuple[float, float, float]:
    """Colour of ``level`` on a grey scale: the levels of an explanation whose certificate fails, so that where
    only segments are shown (Slicer, a MONAI Label client) it never looks like a heat map."""
    shade = 0.35 + 0.5 * (level - 1) / max(levels - 1, 1)
    return (shade, shade, shade)


def level_thresholds(
    values: np.ndarray, levels: int = 5, *, lowest_share: float = LOWEST_SHARE, ratio: float = RATIO
) -> np.ndarray:
    """The smallest value of each level 1..levels (ascending); a voxel is in level >= k iff value >= cut k.

    Fewer than ``levels`` cuts come back when the map has fewer distinct positive values.
    """
    array = np.asarray(values, dtype=np.float64).ravel()
    peak = float(array.max()) if array.size else 0.0
    if not peak > 0:
        return np.zeros(0)
    positive = np.sort(array[array >= FLOOR * peak])[::-1]  # descending
    distinct = np.unique(positive)[::-1]  # descending
    count = min(levels, distinct.size)
    # Index into `distinct` of each level's cut, from the rank quantile, top level first.
    wanted = []
    for level in range(count, 0, -1):
        share = lowest_share * ratio ** -(level - 1)
        rank = max(1, int(np.ceil(share * positive.size)))
        cut = positive[rank - 1]
        wanted.append(int(np.searchsorted(-distinct, -cut, side="left")))
    cuts = []
    previous = -1
    for offset, index in enumerate(wanted):  # offset 0 is the top level
        room = distinct.size - (count - offset)  # leave one distinct value for every lower level
        index = min(max(index, previous + 1), room)
        cuts.append(distinct[index])
        previous = index
    return np.array(cuts[::-1])


def responsibility_levels(
    values: np.ndarray, levels: int = 5, *, lowest_share: float = LOWEST_SHARE, ratio: float = RATIO
) -> np.ndarray:
    """Disjoint labels 0..levels of a map: 0 outside level 1, else the highest level whose cut the value reaches."""
    array = np.asarray(values, dtype=np.float64)
    cuts = level_thresholds(array, levels, lowest_share=lowest_share, ratio=ratio)
    out = np.zeros(array.shape, dtype=np.uint8)
    for level, cut in enumerate(cuts, start=1):
        out[array >= cut] = level
    return out
