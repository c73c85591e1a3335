"""Turning a continuous map into display levels (labelmaps for Slicer and MONAI Label)."""

from __future__ import annotations

import numpy as np

HEAT = [(0.50, 0.0, 0.0), (0.80, 0.10, 0.0), (1.0, 0.40, 0.0), (1.0, 0.70, 0.0), (1.0, 1.0, 0.30), (1.0, 1.0, 0.75)]


def heat_colour(level: int, levels: int) -> tuple[float, float, float]:
    """Colour of ``level`` (1..levels) on a dark-red-to-yellow heat scale."""
    position = (level - 1) / max(levels - 1, 1) * (len(HEAT) - 1)
    low = int(np.floor(position))
    high = min(low + 1, len(HEAT) - 1)
    weight = position - low
    return tuple(float((1 - weight) * a + weight * b) for a, b in zip(HEAT[low], HEAT[high], strict=True))


def responsibility_levels(values: np.ndarray, levels: int = 5) -> np.ndarray:
    """Disjoint bands of a map: 0 where the map is <= 0, else ceil(levels * value / max) in 1..levels."""
    array = np.asarray(values, dtype=np.float32)
    peak = float(array.max()) if array.size else 0.0
    out = np.zeros(array.shape, dtype=np.uint8)
    if peak <= 0:
        return out
    positive = array > 0
    out[positive] = np.clip(np.ceil(levels * array[positive] / peak), 1, levels).astype(np.uint8)
    return out
