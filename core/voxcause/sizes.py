"""The size of a mask as the user reads it, defined once (overview, summary.json, report, Slicer panel)."""

from __future__ import annotations

import numpy as np


def mask_size(mask: np.ndarray, spacing) -> dict[str, float | int]:
    """A mask's size as the user sees it: voxels of the *image* grid (as explanation.seg.nrrd holds it), and
    millilitres (3D) or square millimetres (2D). The one measure the overview, summary.json, the report and the
    Slicer panel print (the search's own counts, on the model grid, stay in the method blocks)."""
    voxels = int(np.count_nonzero(mask))
    size = voxels * float(np.prod(spacing))
    return {"image_voxels": voxels, **({"ml": round(size / 1000, 4)} if len(spacing) == 3 else {"mm2": round(size, 2)})}
