"""Where an intervention acts: the (dilated) region, the image's foreground and the ring of tissue around it.

Every counterfactual works on a small box around the region rather than the whole volume, so the cost
follows the lesion's size, not the scan's (a 1 mm brain has 8.7 M voxels; a lesion box a few ten
thousand). The helpers here build that box and the three masks inside it:

* ``fill``: the region, dilated by ``dilate_mm`` so the lesion's blurred rim goes too, restricted to the
  foreground (air around the head is never "filled" with tissue);
* ``ring``: foreground voxels outside the fill within ``ring_mm`` of it — the surrounding tissue whose
  intensities and texture the infill must match;
* ``foreground``: voxels that differ from the image's background (the flat value at its border).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import InputError


def check_region(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Return ``region`` as a bool array after checking it fits ``image`` (C, *spatial) and is not empty."""
    if image.ndim < 3:
        raise InputError(
            f"image array has shape {image.shape}; expected (C, *spatial) with 2 or 3 spatial axes — "
            "add the channel axis (array[None])"
        )
    mask = np.asarray(region)
    if mask.shape == image.shape:
        raise InputError(f"image array {image.shape} has the mask's shape, so it lacks the channel axis — "
                         "pass image[None] (arrays are (C, *spatial))")
    if mask.shape != image.shape[1:]:
        raise InputError(
            f"mask shape {mask.shape} does not match the image's spatial shape {image.shape[1:]} — "
            "resample the mask into the image grid (voxcause.counterfactual.masks.mask_from_file does this)"
        )
    mask = mask.astype(bool, copy=False)
    if not mask.any():
        raise InputError("the mask is empty (no voxel set) — pass a mask that marks the region to intervene on")
    return mask


def foreground_of(image: np.ndarray, *, tolerance: float = 0.01, noise_margin: float = 3.0) -> np.ndarray:
    """Voxels of ``image`` (C, *spatial) that are not background, as a bool array (*spatial).

    The background is what the image's border holds: a flat value (0 for skull-stripped MRI, about -1000
    for CT, 0 after z-scoring where tissue is also negative) or noise around it (air in a raw MRI, Rician).
    A voxel is foreground when any channel differs from the border's median by more than the larger of
    ``tolerance`` times the channel's 1-99 % range and ``noise_margin`` times the border's 90th-percentile
    deviation (so air noise stays background: for Rician air that threshold is about 4 sigma, while up
    to a tenth of the border may be tissue, e.g. the neck cut by the field of view). When the border is
    not background-like (its median deviation reaches a tenth of the image's range: tissue fills the edge,
    as in a crop or a photo) everything is foreground.
    """
    spatial = image.shape[1:]
    foreground = np.zeros(spatial, dtype=bool)
    for channel in image:
        border = np.concatenate([np.take(channel, index, axis=axis).ravel()
                                 for axis in range(channel.ndim) for index in (0, -1)])
        sample = channel.ravel()[:: max(channel.size // 1_000_000, 1)]  # percentiles of a 1 M subsample suffice
        low, high = np.percentile(sample, [1, 99])
        span = max(float(high - low), 1e-12)
        background = float(np.median(border))
        typical, deviation = np.percentile(np.abs(border - background), [50, 90])
        if typical > 0.1 * span:
            return np.ones(spatial, dtype=bool)
        foreground |= np.abs(channel - background) > max(tolerance * span, noise_margin * float(deviation))
    return foreground


ISLAND_FRACTION = 0.25  # a region with less tissue than this around it is filled from the background


@dataclass(frozen=True)
class RegionBox:
    """The box around a region and the masks the interventions need, all cropped to the box."""

    box: tuple[slice, ...]
    fill: np.ndarray
    ring: np.ndarray
    foreground: np.ndarray
    in_background: bool = False

    def crop(self, array: np.ndarray) -> np.ndarray:
        """``array`` (C, *spatial) cropped to the box (a view)."""
        return array[(slice(None), *self.box)]


def mm_to_voxels(mm: float, spacing: Sequence[float]) -> tuple[int, ...]:
    return tuple(int(np.ceil(mm / max(float(s), 1e-9))) for s in spacing)


def bounding_box(mask: np.ndarray, *, pad: Sequence[int]) -> tuple[slice, ...]:
    """The smallest box holding ``mask``, grown by ``pad`` voxels per axis and clipped to the array."""
    box = []
    for axis, size in enumerate(mask.shape):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        box.append(slice(max(int(hits[0]) - pad[axis], 0), min(int(hits[-1]) + 1 + pad[axis], size)))
    return tuple(box)


def dilate(mask: np.ndarray, mm: float, spacing: Sequence[float]) -> np.ndarray:
    """``mask`` grown by ``mm`` millimetres (Euclidean, anisotropic spacing respected)."""
    if mm <= 0:
        return mask.copy()
    return ndimage.distance_transform_edt(~mask, sampling=spacing) <= mm


def region_box(
    image: np.ndarray,
    region: np.ndarray,
    *,
    spacing: Sequence[float],
    dilate_mm: float,
    ring_mm: float,
    foreground: np.ndarray | None = None,
    extra_margin: int = 2,
) -> RegionBox:
    """Build the fill and ring masks for ``region`` inside ``image`` (C, *spatial).

    Raises:
        InputError: the region lies outside the foreground, or covers all of it (nothing left to match).
    """
    region = check_region(image, region)
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != region.ndim:
        raise InputError(f"spacing {spacing} has {len(spacing)} values for a {region.ndim}-D image — pass one per axis")
    if foreground is None:
        foreground = foreground_of(image)
    elif foreground.shape != region.shape:
        raise InputError(
            f"foreground mask shape {foreground.shape} does not match the image {region.shape} — "
            "pass one on the image grid"
        )
    foreground = np.asarray(foreground, dtype=bool)
    if not (region & foreground).any():
        raise InputError(
            "the mask lies outside the image's foreground (only background/air under it) — "
            "check that the mask belongs to this image, or pass the foreground explicitly"
        )
    pad = np.add(mm_to_voxels(dilate_mm + ring_mm, spacing), extra_margin)
    box = bounding_box(region, pad=tuple(int(p) for p in pad))
    fg = foreground[box]
    dilated = dilate(region[box], dilate_mm, spacing)
    grown = dilated & fg
    if int(grown.sum()) >= int(foreground.sum()):
        raise InputError(
            "the mask covers the whole foreground, so no surrounding tissue is left to fill from — "
            "pass a mask of the lesion only (or a smaller --dilate-mm)"
        )
    ring = dilate(grown, ring_mm, spacing) & ~grown & fg
    around = dilate(dilated, ring_mm, spacing) & ~dilated
    if ring.any() and (around & fg).sum() >= ISLAND_FRACTION * around.sum():
        return RegionBox(box=box, fill=grown, ring=ring, foreground=fg)
    # An island in the background (a scanner tag or burnt-in text outside the head): its surroundings
    # are mostly air (a noise speckle or a brush of scalp does not count), so it is filled from that air.
    everything = np.ones_like(fg)
    ring = around & ~fg
    if not ring.any():
        raise InputError("the mask covers the whole image, so nothing is left to fill from — "
                         "pass a mask of the region only")
    return RegionBox(box=box, fill=dilated, ring=ring, foreground=everything, in_background=True)
