"""Write a sample patient to disk in MNI152 geometry (SimpleITK): one NIfTI per sequence, a 4-channel
(vector) NIfTI, and the BraTS-style label map."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .generator import Patient


def _write(image: sitk.Image, path: Path) -> None:
    """Write to a temporary name in the same folder, then rename: no half-written file on failure."""
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix="".join(path.suffixes), dir=path.parent)
    os.close(handle)
    try:
        sitk.WriteImage(image, temporary, useCompression=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_patient(patient: Patient, out_dir: str | Path, *, prefix: str | None = None) -> dict[str, Path]:
    """Write `patient` into `out_dir` (created if needed).

    Files (``prefix`` defaults to ``<kind>-<seed>``): ``<prefix>_T1.nii.gz``, ``_T1c``, ``_T2``, ``_FLAIR``
    (float32), ``<prefix>_4ch.nii.gz`` (4-component vector image, channels in that order; read by
    `voxcause.io.read_image` as channels) and ``<prefix>_label.nii.gz`` (uint8, 0/1/2/4).

    Returns:
        {"T1": path, "T1c": ..., "T2": ..., "FLAIR": ..., "multichannel": path, "label": path}
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = prefix or f"{patient.kind}-{patient.seed}"
    paths: dict[str, Path] = {}
    for index, sequence in enumerate(patient.sequences):
        path = folder / f"{stem}_{sequence}.nii.gz"
        _write(patient.image(patient.channels[index]), path)
        paths[sequence] = path
    paths["multichannel"] = folder / f"{stem}_4ch.nii.gz"
    _write(patient.image(patient.channels), paths["multichannel"])
    paths["label"] = folder / f"{stem}_label.nii.gz"
    _write(patient.image(patient.label.astype(np.uint8)), paths["label"])
    return paths
