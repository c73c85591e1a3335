"""Reading images with SimpleITK and writing arrays back in the input's exact geometry.

A `Volume` keeps the voxel array in numpy order ``(C, *spatial)`` = ``(C, z, y, x)`` for 3D and the
SimpleITK image of the first channel as the geometry reference, so every output (maps, masks,
segmentations) can be written with the input's size, spacing, origin and direction.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .atomic import atomic_path
from .photo import PHOTO_SUFFIXES, is_photo, read_photo
from .verify import check_geometry, check_slice_spacing, choose_series, verify_payload

PathLike = str | os.PathLike
_NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass
class Volume:
    """An image as float32 ``array`` (C, *spatial) plus the SimpleITK ``reference`` holding its geometry."""

    array: np.ndarray
    reference: sitk.Image
    paths: list[str] = field(default_factory=list)
    series_uid: str | None = None  # the DICOM SeriesInstanceUID read, for a DICOM folder

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape[1:])

    @property
    def spatial_dims(self) -> int:
        return self.array.ndim - 1

    @property
    def channels(self) -> int:
        return self.array.shape[0]

    @property
    def spacing(self) -> tuple[float, ...]:
        """Voxel spacing in array axis order (z, y, x)."""
        return tuple(reversed(self.reference.GetSpacing()))


def _read_one(path: PathLike, series: str | None = None) -> tuple[sitk.Image, str | None]:
    """One file or DICOM folder -> (image, SeriesInstanceUID or None), its payload verified first."""
    source = Path(path)
    if not source.exists():
        raise InputError(f"image not found: {source} — check the path")
    try:
        if source.is_dir():
            reader = sitk.ImageSeriesReader()
            uid = choose_series(source, reader.GetGDCMSeriesIDs(str(source)), series)
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(source), uid))
            reader.MetaDataDictionaryArrayUpdateOn()  # slice positions, for check_slice_spacing
            warnings = sitk.ProcessObject.GetGlobalWarningDisplay()
            sitk.ProcessObject.SetGlobalWarningDisplay(False)  # uneven slices: refused below in one line
            try:
                image = reader.Execute()
            finally:
                sitk.ProcessObject.SetGlobalWarningDisplay(warnings)
            check_slice_spacing(reader, image, source, uid)
            return image, uid
        verify_payload(source)
        image = sitk.ReadImage(str(source))
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[-1] if str(error).strip() else "unknown error"
        raise InputError(
            f"cannot read image {source} ({first_line}) — use NIfTI, NRRD, MHA, a DICOM series folder or PNG/JPEG"
        ) from None
    if source.name.lower().endswith(_NIFTI_SUFFIXES):
        _check_nifti_payload(source)
    return image, None


def _check_nifti_payload(source: Path) -> None:
    """Refuse NaN/inf voxels in a NIfTI file, which SimpleITK (2.5.7) silently reads as 0.

    The payload is read again with nibabel (a MONAI dependency), scaled as stored; integer payloads without
    scaling cannot hold NaN and are not read twice.
    """
    import nibabel

    try:
        header = nibabel.load(str(source))
        dtype = header.get_data_dtype()
        slope, _ = header.header.get_slope_inter()
        if dtype.kind != "f" and (slope is None or np.isfinite(slope)):
            return
        data = np.asanyarray(header.dataobj)
    except Exception:  # noqa: BLE001 - SimpleITK read the file; a nibabel quirk must not refuse it
        return
    bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise InputError(
            f"image {source.name} has {bad} NaN/inf voxels — replace them (e.g. with 0) before explaining"
        )


def _channels_of(image: sitk.Image) -> tuple[np.ndarray, sitk.Image]:
    """Split an image into a (C, *spatial) array and a scalar geometry reference."""
    components = image.GetNumberOfComponentsPerPixel()
    if image.GetDimension() == 4:
        size = list(image.GetSize())
        channels = size[3]
        size[3] = 0
        parts = [sitk.Extract(image, size, [0, 0, 0, index]) for index in range(channels)]
        return np.stack([sitk.GetArrayFromImage(p) for p in parts]).astype(np.float32), parts[0]
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    if components > 1:
        reference = sitk.VectorIndexSelectionCast(image, 0)
        return np.moveaxis(array, -1, 0), reference
    return array[None], image


def read_image(paths: PathLike | Sequence[PathLike], *, series: str | None = None) -> Volume:
    """Read an image (or one file per channel) into a `Volume`.

    Args:
        paths: a file SimpleITK reads (NIfTI, NRRD, MHA, PNG/JPEG ...), a DICOM series folder, or a list of
            such files with the same geometry, one per channel (e.g. T1, T1c, T2, FLAIR). 4D files and vector
            images become channels; pictures (JPEG/PNG/TIFF/BMP) have 1 or 3 channels as stored (`io.photo`).
        series: the SeriesInstanceUID to read from a DICOM folder holding several series (refused without it).

    Raises:
        InputError: a missing or unreadable file, a payload shorter than its header promises, a folder with
            several DICOM series and no ``series``, skewed axes no output format keeps, too few voxels.

    Returns:
        A `Volume` with a float32 array (C, *spatial). 2D images are 2D (no singleton axis).
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not items:
        raise InputError("no image given — pass at least one image path")
    arrays, reference, uids = [], None, []
    for item in items:
        photo = read_photo(item) if is_photo(item) and Path(item).is_file() else None
        if photo is not None:
            array, geometry = photo
        else:
            image, uid = _read_one(item, series)
            uids.append(uid)
            if Path(item).suffix.lower() in PHOTO_SUFFIXES and image.GetDimension() == 3 and image.GetSize()[2] == 1:
                image = image[:, :, 0]
            array, geometry = _channels_of(image)
        if reference is None:
            reference = geometry
        elif geometry.GetSize() != reference.GetSize():
            raise InputError(
                f"channel file {item} has size {geometry.GetSize()} but the first has {reference.GetSize()} — "
                "resample the sequences to one grid first"
            )
        arrays.append(array)
    array = np.concatenate(arrays, axis=0)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise InputError(f"image has {bad} NaN/inf voxels — replace them (e.g. with 0) before explaining")
    check_geometry(reference, items[0])
    found = [uid for uid in uids if uid]
    return Volume(array=array, reference=reference, paths=[str(p) for p in items],
                  series_uid=",".join(found) if found else None)


def image_like(array: np.ndarray, reference: Volume | sitk.Image) -> sitk.Image:
    """A SimpleITK image holding ``array`` ((*spatial) or (C, *spatial)) with the reference's geometry."""
    geometry = reference.reference if isinstance(reference, Volume) else reference
    spatial = tuple(reversed(geometry.GetSize()))
    data = np.asarray(array)
    if data.shape == spatial:
        image = sitk.GetImageFromArray(data)
    elif data.ndim == len(spatial) + 1 and data.shape[1:] == spatial:
        image = sitk.GetImageFromArray(np.moveaxis(data, 0, -1), isVector=True)
    else:
        raise ValueError(f"array of shape {data.shape} does not fit the reference grid {spatial}")
    image.CopyInformation(geometry)
    return image


def write_image(array: np.ndarray, reference: Volume | sitk.Image, path: PathLike) -> Path:
    """Write ``array`` in the reference's exact geometry (size, spacing, origin, direction), atomically."""
    image = image_like(array, reference)
    with atomic_path(path) as temp:
        sitk.WriteImage(image, str(temp), useCompression=True)
    return Path(path)
