"""Real adult anatomy for the sample patients: the MNI152 (ICBM 2009a, symmetric) T1 template and its
grey- and white-matter probability maps, read from the files that ship inside the nilearn wheel.

Nothing is downloaded: ``nilearn`` is located with ``importlib`` (without importing it, which is slow) and
its bundled NIfTI files are read with SimpleITK. The template is skull-stripped, so the head around the
brain (cerebrospinal fluid shell, skull, scalp) is modelled from a signed distance to a smoothed brain
envelope. See ``NOTICE.md`` in this folder for the template's copyright.

Geometry: the native 1 mm grid (197 x 233 x 189, origin (98, 134, -72) mm in LPS, direction diag(-1, -1, 1)),
or nilearn's 2 mm grid (99 x 117 x 95, same origin). Arrays are in numpy/SimpleITK order (z, y, x).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import InputError

TEMPLATE_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
RESOLUTIONS_MM = (1.0, 2.0)
ORIGIN_LPS = (98.0, 134.0, -72.0)
DIRECTION = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
SIZE_1MM = (197, 233, 189)  # SimpleITK (x, y, z)


@dataclass(frozen=True)
class Anatomy:
    """Template maps on one grid, arrays (z, y, x) float32.

    ``gm``/``wm``: tissue probabilities in [0, 1]; ``t1``: template T1 scaled to [0, 1];
    ``sdist``: signed distance in mm to the smoothed brain envelope (negative inside);
    ``spacing``/``origin``/``direction``: SimpleITK geometry in (x, y, z) order.
    """

    gm: np.ndarray
    wm: np.ndarray
    t1: np.ndarray
    sdist: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.gm.shape

    def mni_coordinates(self) -> np.ndarray:
        """MNI (RAS, mm) coordinates of every voxel, shape (3, z, y, x) ordered (x_mni, y_mni, z_mni)."""
        return mni_grid(self.shape, self.spacing[0])


def nilearn_data_dir() -> Path:
    """Folder of the data files bundled in the nilearn wheel (found without importing nilearn)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the sample data need nilearn's bundled MNI152 template: pip install 'voxcause[samples]'")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    missing = [name for name in TEMPLATE_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise InputError(f"nilearn at {folder} lacks {missing[0]}: reinstall nilearn>=0.10 (pip install -U nilearn)")
    return folder


def check_resolution(resolution_mm: float) -> float:
    value = float(resolution_mm)
    if value not in RESOLUTIONS_MM:
        raise InputError(f"resolution_mm={resolution_mm!r} is not available: use 2.0 (default) or 1.0")
    return value


def mni_grid(shape: tuple[int, int, int], spacing_mm: float) -> np.ndarray:
    """MNI RAS coordinates (x, y, z) in mm of a grid with this module's origin; shape (3, *shape)."""
    k, j, i = (np.arange(n, dtype=np.float32) * spacing_mm for n in shape)
    x = i - ORIGIN_LPS[0]
    y = j - ORIGIN_LPS[1]
    z = k + ORIGIN_LPS[2]
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    return np.stack([xx, yy, zz])


def _reference(resolution_mm: float) -> sitk.Image:
    size = [int(np.ceil(n / resolution_mm)) for n in SIZE_1MM]
    reference = sitk.Image(size, sitk.sitkFloat32)
    reference.SetSpacing((resolution_mm,) * 3)
    reference.SetOrigin(ORIGIN_LPS)
    reference.SetDirection(DIRECTION)
    return reference


def _read(name: str, resolution_mm: float) -> np.ndarray:
    image = sitk.Cast(sitk.ReadImage(str(nilearn_data_dir() / TEMPLATE_FILES[name])), sitk.sitkFloat32)
    if resolution_mm != 1.0:
        # Gaussian pre-filter so 2 mm voxels average their 1 mm neighbours instead of aliasing them.
        image = sitk.SmoothingRecursiveGaussian(image, 0.42 * resolution_mm)
        image = sitk.Resample(image, _reference(resolution_mm), sitk.Transform(), sitk.sitkLinear, 0.0)
    return sitk.GetArrayFromImage(image).astype(np.float32) / 255.0


def _signed_distance(brain: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Signed distance (mm, negative inside) to the brain closed over sulci (10 mm ball) and filled.

    The closing is done with two Euclidean distance transforms (dilate, then erode), which is exact for a
    ball and far faster than a morphological closing with a large structuring element.
    """
    radius = 10.0
    pad = int(np.ceil(radius / spacing_mm)) + 2
    padded = np.pad(brain, pad)
    dilated = ndimage.distance_transform_edt(~padded, sampling=spacing_mm) <= radius
    closed = ndimage.distance_transform_edt(dilated, sampling=spacing_mm) > radius
    envelope = ndimage.binary_fill_holes(closed[pad:-pad, pad:-pad, pad:-pad] | brain)
    outside = ndimage.distance_transform_edt(~envelope, sampling=spacing_mm)
    inside = ndimage.distance_transform_edt(envelope, sampling=spacing_mm)
    return (outside - inside).astype(np.float32)


@functools.lru_cache(maxsize=2)
def load_anatomy(resolution_mm: float = 2.0) -> Anatomy:
    """Template maps at ``resolution_mm`` (1.0 or 2.0); cached per process (about 1 s at 2 mm)."""
    resolution_mm = check_resolution(resolution_mm)
    gm, wm, t1 = (_read(name, resolution_mm) for name in ("gm", "wm", "t1"))
    if resolution_mm == 1.0:
        coarse = load_anatomy(2.0).sdist
        image = sitk.GetImageFromArray(coarse)
        image.CopyInformation(_reference(2.0))
        sdist = sitk.GetArrayFromImage(
            sitk.Resample(image, _reference(1.0), sitk.Transform(), sitk.sitkLinear, 40.0)
        ).astype(np.float32)
    else:
        sdist = _signed_distance(t1 > 0.02, resolution_mm)
    return Anatomy(
        gm=np.clip(gm, 0, 1),
        wm=np.clip(wm, 0, 1),
        t1=np.clip(t1, 0, 1),
        sdist=sdist,
        spacing=(resolution_mm,) * 3,
        origin=ORIGIN_LPS,
        direction=DIRECTION,
    )
