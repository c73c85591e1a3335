"""Keeping only a region (the "only" counterfactual): does the region alone carry the decision?

Everything outside the (optionally dilated) region is replaced by a baseline (``baseline=``):

* ``"constant"``: ``value`` per channel (default 0: air for raw MRI; the mean tissue intensity after
  z-scoring);
* ``"min"``: each channel's minimum (the darkest value of the scan);
* ``"mean"``: tissue is set to each channel's foreground mean and air stays air, so the head's outline
  is kept while its content is gone (default: it keeps the intensity statistics a model normalises with
  close to the original, unlike a black volume);
* ``"blur"``: a Gaussian blur of the image (``sigma_mm``), which keeps low-frequency context but removes
  structure.

Never modifies its input; works per channel on (C, *spatial), 2D or 3D.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ..errors import InputError
from .regions import check_region, dilate, foreground_of

BASELINES = ("mean", "constant", "min", "blur")


def keep_region(
    image: np.ndarray,
    region: np.ndarray,
    *,
    spacing: Sequence[float] | None = None,
    baseline: str = "mean",
    value: float | Sequence[float] = 0.0,
    sigma_mm: float = 8.0,
    dilate_mm: float = 0.0,
    foreground: np.ndarray | None = None,
) -> np.ndarray:
    """Return a float32 copy of ``image`` (C, *spatial) with everything outside ``region`` suppressed.

    Args:
        image: (C, *spatial) array; not modified.
        region: bool (*spatial), the voxels kept.
        spacing: voxel size per array axis in mm (default 1 mm), for ``dilate_mm`` and ``sigma_mm``.
        baseline: ``mean`` (default), ``constant``, ``min`` or ``blur``.
        value: the constant (scalar or per channel) for ``baseline="constant"`` (default 0).
        sigma_mm: Gaussian sigma for ``baseline="blur"`` (default 8 mm).
        dilate_mm: grow the kept region first (default 0: exactly the mask).
        foreground: tissue mask for ``baseline="mean"`` (default: voxels differing from the border value).

    Raises:
        InputError: empty or mismatched mask, unknown baseline.
    """
    source = np.asarray(image)
    mask = check_region(source, region)
    if baseline not in BASELINES:
        raise InputError(f"unknown region-only baseline {baseline!r} — use one of {', '.join(BASELINES)}")
    spacing = tuple(float(s) for s in (spacing if spacing is not None else (1.0,) * mask.ndim))
    keep = dilate(mask, dilate_mm, spacing)
    out = np.array(source, dtype=np.float32, copy=True)
    outside = ~keep
    channels = source.shape[0]
    if baseline == "constant":
        levels = np.broadcast_to(np.asarray(value, dtype=np.float32).reshape(-1), (channels,))
        for channel in range(channels):
            out[channel][outside] = levels[channel]
    elif baseline == "min":
        for channel in range(channels):
            out[channel][outside] = source[channel].min()
    elif baseline == "mean":
        tissue = foreground_of(source) if foreground is None else np.asarray(foreground, dtype=bool)
        if tissue.shape != mask.shape:
            raise InputError(f"foreground mask shape {tissue.shape} does not match the image {mask.shape} — "
                             "pass one on the image grid")
        suppressed = outside & tissue
        for channel in range(channels):
            level = float(source[channel][tissue].mean()) if tissue.any() else float(source[channel].mean())
            out[channel][suppressed] = level
    else:
        sigma = [sigma_mm / s for s in spacing]
        for channel in range(channels):
            blurred = ndimage.gaussian_filter(source[channel].astype(np.float32), sigma)
            out[channel][outside] = blurred[outside]
    return out
