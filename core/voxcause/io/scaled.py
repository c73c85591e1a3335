"""Maps on grids much larger than the model's, written without inflating the input.

A map computed on a 24³ model grid and resampled onto a 600³ image is smooth, but as float32 its every voxel
differs in the last bits, and gzip cannot shrink it: a 2 MB image gave a 505 MB ``map.nii.gz``. Such a map
holds no more than the model grid's detail, so it is stored as int16 with NIfTI's own scaling
(``scl_slope``, applied by SimpleITK, nibabel, Slicer and ITK-SNAP when they read it): every value within half
a step, ``max|map| / 32767``, of the float map — 25x smaller at 256³ from 24³ (42.8 MB -> 1.7 MB).
Maps on grids near the model's stay float32, exactly as computed.
"""

from __future__ import annotations

import gzip
import math
import shutil
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .atomic import atomic_path

#: Image voxels per model voxel from which a map is stored scaled (the map is then an upsampled model grid).
SCALED_GRID_RATIO = 8
#: ... and only for images at least this large (smaller maps are small as float32 too).
SCALED_MIN_VOXELS = 2**22
INT16_STEPS = 32767
_SLOPE_OFFSET = 112  # NIfTI-1 header: float32 scl_slope, then scl_inter


def scaled_map(image_shape: Sequence[int], model_grid: Sequence[int] | None) -> bool:
    """Whether a map on ``image_shape`` computed on ``model_grid`` is written as scaled int16."""
    if not model_grid:
        return False
    image_voxels = math.prod(int(n) for n in image_shape)
    return image_voxels >= SCALED_MIN_VOXELS and image_voxels >= SCALED_GRID_RATIO * math.prod(model_grid)


def write_scaled_nifti(array: np.ndarray, reference: sitk.Image, path: str | Path) -> float | None:
    """Write ``array`` as int16 NIfTI with ``scl_slope`` (atomically, in the reference's geometry).

    Returns the slope, or None when the map is all zero or not finite (then it is written as float32).
    """
    from .images import image_like, write_image

    peak = float(np.max(np.abs(array))) if array.size else 0.0
    if not np.isfinite(peak) or peak == 0.0:
        write_image(array, reference, path)
        return None
    slope = peak / INT16_STEPS
    quantized = np.rint(np.asarray(array, np.float32) / np.float32(slope)).astype(np.int16)
    image = image_like(quantized, reference)
    with atomic_path(path) as temp:
        raw = temp.with_name(temp.name.removesuffix(".gz"))
        try:
            sitk.WriteImage(image, str(raw), useCompression=False)
            with open(raw, "r+b") as handle:
                if struct.unpack("<i", handle.read(4))[0] != 348:  # not a little-endian NIfTI-1 header
                    raise OSError(f"{raw} is not a little-endian NIfTI-1 file")
                handle.seek(_SLOPE_OFFSET)
                handle.write(struct.pack("<ff", slope, 0.0))
            with open(raw, "rb") as source, gzip.open(temp, "wb", compresslevel=6) as target:
                shutil.copyfileobj(source, target, 1 << 20)
        finally:
            raw.unlink(missing_ok=True)
    return slope
