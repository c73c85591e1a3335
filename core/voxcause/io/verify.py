"""Checks that an image file holds what its header promises, before anything is explained.

SimpleITK (2.5) reads a NIfTI file whose voxel payload is cut short (a download stopped half way, a gzip of a
truncated file) without a word, filling the missing voxels with zeros: the explanation would be of an image
that is not the patient's. NRRD and MetaImage readers refuse short payloads themselves; every gzip stream is
checked here to its end (its CRC and length included), and a NIfTI header's promised payload is compared with
the bytes the file holds.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ..errors import InputError

CHUNK = 1 << 20
OUT_LIMIT = 1 << 24
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def gzip_length(path: Path) -> int:
    """The uncompressed length of a gzip file, reading every member to its end (CRC and size checked by zlib),
    in bounded memory (at most ``CHUNK`` compressed and ``OUT_LIMIT`` uncompressed bytes at a time).

    Raises InputError when the stream stops before its end marker or its checksum fails.
    """
    total = 0
    with path.open("rb") as handle:
        decompressor = zlib.decompressobj(wbits=31)
        data = handle.read(CHUNK)
        try:
            while data:
                total += len(decompressor.decompress(data, OUT_LIMIT))
                if decompressor.eof:
                    data = decompressor.unused_data or handle.read(CHUNK)
                    if not data:
                        return total
                    decompressor = zlib.decompressobj(wbits=31)  # a further gzip member follows
                    continue
                data = decompressor.unconsumed_tail or handle.read(CHUNK)
            total += len(decompressor.flush())
        except zlib.error as error:
            raise _damaged(path, f"its gzip data is damaged ({error})") from None
    if not decompressor.eof:
        raise _damaged(path, "its gzip stream ends before its end marker (the file is truncated)")
    return total


def _damaged(path: Path, problem: str) -> InputError:
    return InputError(f"image {path.name}: {problem} — the copy or download was cut short; fetch the file again")


def check_nifti_length(path: Path) -> None:
    """Refuse a NIfTI file (plain or gzipped) holding fewer payload bytes than its header promises."""
    import nibabel

    try:
        payload = nibabel.load(str(path)).dataobj  # an ArrayProxy: where the voxels start, their shape and type
        promised = int(payload.offset) + int(np.prod(payload.shape, dtype=np.int64)) * int(payload.dtype.itemsize)
    except Exception:  # noqa: BLE001 - a header nibabel cannot parse: SimpleITK's own read decides
        return
    held = gzip_length(path) if path.name.lower().endswith(".gz") else path.stat().st_size
    if held < promised:
        raise _damaged(
            path, f"its header promises {promised:,} bytes of header and voxels but the file holds {held:,}"
        )


def verify_payload(path: str | Path) -> None:
    """Every check that applies to this file: gzip streams to their end, NIfTI payload length."""
    source = Path(path)
    if source.is_dir():
        return
    name = source.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        check_nifti_length(source)
    elif name.endswith(".gz"):
        gzip_length(source)


def choose_series(folder: Path, series: list[str] | tuple[str, ...], wanted: str | None) -> str:
    """The one DICOM series to read from ``folder``: the only one, or ``wanted``; several without a choice refuse."""
    found = list(series)
    if not found:
        raise InputError(f"{folder} is a folder without a DICOM series — pass an image file or a DICOM folder")
    if wanted is not None:
        if wanted not in found:
            raise InputError(
                f"DICOM series {wanted[:80]} is not in {folder} — it holds {', '.join(found)}; pass one of them "
                "with --series"
            )
        return wanted
    if len(found) > 1:
        raise InputError(
            f"{folder} holds {len(found)} DICOM series ({', '.join(found)}) — pick one with --series UID"
        )
    return found[0]


#: Smallest model input voxels a partition search can split (two parts along at least one axis).
MIN_VOXELS = 2
#: How far a direction matrix may be from orthonormal before an output format would change it.
ORTHONORMAL_TOLERANCE = 1e-4


def check_geometry(reference, source) -> None:
    """Refuse geometry the outputs cannot keep or the search cannot split.

    NIfTI (map.nii.gz) stores a rotation: ITK coerces a skewed (non-orthogonal) direction to another one, and
    the map would no longer overlay the segmentation and the input, so such an image is refused here.
    """
    dimension = reference.GetDimension()
    direction = np.asarray(reference.GetDirection(), dtype=float).reshape(dimension, dimension)
    if not np.allclose(direction.T @ direction, np.eye(dimension), atol=ORTHONORMAL_TOLERANCE):
        raise InputError(
            f"image {Path(source).name} has skewed axes (a non-orthogonal direction matrix), which NIfTI outputs "
            "cannot keep — resample it onto an orthogonal grid first (e.g. SimpleITK.Resample with an orthonormal "
            "direction, or Slicer's Resample Scalar Volume)"
        )
    size = reference.GetSize()
    if int(np.prod(size)) < MIN_VOXELS:
        raise InputError(
            f"image {Path(source).name} has {'x'.join(str(n) for n in size)} voxels, too few to explain (nothing "
            "to partition) — pass the whole image, not a single voxel"
        )


#: Allowed deviation of one slice gap from the median gap, as a share of it.
SLICE_GAP_TOLERANCE = 0.1


def check_slice_spacing(reader, image, folder: Path, uid: str) -> None:
    """Refuse a DICOM series whose slice positions along the slice normal are unevenly spaced: a missing slice
    (GDCM silently drops a truncated file from the series) would be explained as if the volume were continuous.

    ``reader`` is the SimpleITK ``ImageSeriesReader`` that read ``image`` with its metadata dictionaries kept.
    """
    if image.GetDimension() != 3 or image.GetSize()[2] < 3:
        return
    normal = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)[:, 2]
    try:
        positions = [
            float(np.dot([float(v) for v in reader.GetMetaData(index, "0020|0032").split("\\")], normal))
            for index in range(image.GetSize()[2])
        ]
    except (RuntimeError, ValueError):  # no Image Position (Patient) to check against
        return
    gaps = np.diff(np.sort(positions))
    median = float(np.median(gaps))
    if median > 0 and float(np.max(np.abs(gaps - median))) > SLICE_GAP_TOLERANCE * median:
        raise InputError(
            f"DICOM series {uid} in {folder} has unevenly spaced slices (gaps {gaps.min():.3g}-{gaps.max():.3g} mm): "
            "a slice is missing, damaged or out of place — fetch the whole series again"
        )
