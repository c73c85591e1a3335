"""Connected components of a mask: clean-up, volume in ml, centroid and peak in millimetres, Dice.

Coordinates: SimpleITK's physical space is LPS (x grows to the patient's Left, y to Posterior). Reports and
MNI atlases speak RAS (NIfTI convention: x to the Right, y Anterior), so every coordinate we publish is
RAS, in mm, and the key says so (`centroid_ras_mm`). RAS = LPS with x and y negated.

Arrays are numpy `(*S)` in SimpleITK/numpy order (`(z, y, x)` in 3D); `reference` is the SimpleITK image
that holds the grid's geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from voxcause.errors import InputError


def lps_to_ras(point: tuple[float, ...] | np.ndarray) -> list[float]:
    """Flip the first two axes: LPS <-> RAS (the operation is its own inverse)."""
    p = [float(v) for v in point]
    if len(p) >= 2:
        p[0], p[1] = -p[0], -p[1]
    return p


def index_to_ras(reference: sitk.Image, index_zyx: np.ndarray | tuple[float, ...]) -> list[float]:
    """Continuous numpy index `(z, y, x)` (or `(y, x)`) -> RAS mm through the reference's geometry."""
    xyz = tuple(float(v) for v in np.asarray(index_zyx, dtype=np.float64)[::-1])
    return lps_to_ras(reference.TransformContinuousIndexToPhysicalPoint(xyz))


def voxel_volume_ml(reference: sitk.Image) -> float:
    """Volume of one voxel in millilitres (1 ml = 1000 mm^3); in 2D this is an area in cm^2."""
    return float(np.prod(reference.GetSpacing())) / 1000.0


def clean_mask(mask: np.ndarray, *, min_voxels: int = 8, min_share_of_largest: float = 0.05) -> np.ndarray:
    """Drop specks: components smaller than `min_voxels` or than `min_share_of_largest` x the largest one.

    Why both: an absolute floor removes single-voxel noise at any size; the relative one removes crumbs
    around a big region without deleting a small but genuine second region next to a small first one.
    Holes inside a component are filled (a region is reported as a solid region).
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return mask.copy()
    labels, n = ndimage.label(mask, structure=np.ones((3,) * mask.ndim))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    floor = max(min_voxels, min_share_of_largest * sizes.max())
    keep = sizes >= floor
    keep[0] = False
    out = keep[labels]
    if not out.any():  # everything was a speck: keep the largest rather than report nothing
        out = labels == int(np.argmax(sizes))
    return ndimage.binary_fill_holes(out)


@dataclass
class Component:
    """One connected piece of the mask (numbers in the units their names say)."""

    id: int
    voxels: int
    volume_ml: float
    centroid_ras_mm: list[float]
    peak_ras_mm: list[float]
    peak_value: float
    attribution_fraction: float

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "voxels": self.voxels,
            "volume_ml": round(self.volume_ml, 3),
            "centroid_ras_mm": [round(v, 1) + 0.0 for v in self.centroid_ras_mm],
            "peak_ras_mm": [round(v, 1) + 0.0 for v in self.peak_ras_mm],
            "peak_value": float(self.peak_value),
            "attribution_fraction": round(self.attribution_fraction, 4),
        }


def describe_components(
    mask: np.ndarray, attribution: np.ndarray, reference: sitk.Image, *, foreground: np.ndarray | None = None
) -> list[Component]:
    """Components of `mask`, largest first, each with its share of the positive attribution mass.

    `attribution_fraction` = sum of the positive map inside the component / sum of the positive map inside
    the foreground (default: everywhere), so it says how much of the evidence the component carries.
    """
    mask = np.asarray(mask, dtype=bool)
    amap = np.asarray(attribution, dtype=np.float64)
    if mask.shape != amap.shape:
        raise InputError(f"mask shape {mask.shape} differs from the map's {amap.shape}; use the map's grid")
    positive = np.clip(np.nan_to_num(amap), 0, None)
    if foreground is not None:
        positive = np.where(foreground, positive, 0.0)
    total = float(positive.sum())
    labels, n = ndimage.label(mask, structure=np.ones((3,) * mask.ndim))
    if n == 0:
        return []
    idx = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(np.ones_like(amap), labels, idx)
    centroids = ndimage.center_of_mass(np.ones_like(amap), labels, idx)
    peaks = ndimage.maximum_position(amap, labels, idx)
    masses = ndimage.sum_labels(positive, labels, idx)
    vml = voxel_volume_ml(reference)
    comps = []
    for i in range(n):
        comps.append(Component(
            id=0,
            voxels=int(sizes[i]),
            volume_ml=float(sizes[i]) * vml,
            centroid_ras_mm=index_to_ras(reference, centroids[i]),
            peak_ras_mm=index_to_ras(reference, peaks[i]),
            peak_value=float(amap[tuple(peaks[i])]),
            attribution_fraction=float(masses[i]) / total if total > 0 else 0.0,
        ))
    comps.sort(key=lambda c: (-c.voxels, c.centroid_ras_mm))
    for k, c in enumerate(comps, start=1):
        c.id = k
    return comps


