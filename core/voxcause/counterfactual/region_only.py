"""Keeping only a region (the "only" counterfactual): does the region alone carry the decision?

Everything outside the (optionally dilated) region is removed by ``baseline``, a name of
`voxcause.removal.REMOVALS` but ``context`` (`removal.canvas`; the names mean what they mean everywhere):
``zero``, ``constant`` (``value``, per channel allowed; 0 is air for raw MRI), ``min``, ``mean`` (each
channel's body mean: default, it keeps the intensity statistics a model normalises with close to the
original, unlike a black volume; here tissue only, air stays air, so the head's outline is kept while its
content is gone) or ``blur`` (``sigma_mm``: low-frequency context kept, structure removed).

Never modifies its input; works per channel on (C, *spatial), 2D or 3D.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import InputError
from ..removal import REMOVALS, canvas
from .regions import check_region, dilate, foreground_of

BASELINES = tuple(name for name in REMOVALS if name != "context")


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
        baseline: ``mean`` (default), ``zero``, ``constant``, ``min`` or ``blur``.
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
    outside = ~keep
    tissue = None
    if baseline == "mean":
        tissue = foreground_of(source) if foreground is None else np.asarray(foreground, dtype=bool)
        if tissue.shape != mask.shape:
            raise InputError(f"foreground mask shape {tissue.shape} does not match the image {mask.shape} — "
                             "pass one on the image grid")
        outside = outside & tissue
    levels = np.broadcast_to(np.asarray(value, dtype=np.float32).reshape(-1), (source.shape[0],))
    out = canvas(torch.from_numpy(np.array(source, dtype=np.float32))[None], baseline, where=torch.from_numpy(outside),
                 value=levels.tolist(), foreground=None if tissue is None else torch.from_numpy(tissue),
                 blur_sigma=[sigma_mm / s for s in spacing])
    return out[0].numpy()
