"""Fixtures for the batch tests: small 3D NIfTI volumes with a bright sphere, a manifest, a corrupt file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from batch_casework import write_manifest

SIZE = 24


def sphere_volume(seed: int, size: int = SIZE) -> np.ndarray:
    """Noise background plus one bright sphere at a seed-dependent place, (z, y, x) float32."""
    rng = np.random.default_rng(seed)
    array = rng.normal(0.0, 0.1, (size, size, size)).astype(np.float32)
    centre = rng.integers(6, size - 6, size=3)
    zz, yy, xx = np.indices(array.shape)
    inside = (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= 3**2
    array[inside] += 2.0
    return array


def write_volume(path: Path, array: np.ndarray, spacing: float = 2.0) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((spacing,) * 3)
    image.SetOrigin((-20.0, 10.0, 5.0))
    sitk.WriteImage(image, str(path))
    return path




@pytest.fixture
def cohort(tmp_path: Path) -> dict[str, Path]:
    """Five readable cases and one corrupt image, with a manifest (relative paths) and a dummy model file."""
    data = tmp_path / "data"
    data.mkdir()
    for index in range(5):
        write_volume(data / f"case{index}.nii.gz", sphere_volume(index))
    (data / "broken.nii.gz").write_bytes(b"this is not a NIfTI file")
    model = data / "model.bin"
    model.write_bytes(b"weights v1")
    rows = [{"image": f"case{i}.nii.gz", "id": f"c{i}", "label": "bright"} for i in range(5)]
    rows.insert(2, {"image": "broken.nii.gz", "id": "broken", "label": "bright"})
    manifest = write_manifest(data / "manifest.csv", rows)
    return {"data": data, "manifest": manifest, "model": model}


class BrightSphere(torch.nn.Module):
    """Classifier whose cause is a bright blob anywhere: 3x3x3 box mean, global max, logit = gain*(max-0.8).

    Output (B, 2) logits [no blob, blob]; a sphere of +2 over 0.1-std noise gives class 1 with p ~ 1.
    """

    def __init__(self) -> None:
        super().__init__()
        self.local = torch.nn.Conv3d(1, 1, 3, padding=1, bias=False)
        with torch.no_grad():
            self.local.weight.fill_(1.0 / 27.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        peak = self.local(x).flatten(1).amax(dim=1)
        logit = 20.0 * (peak - 0.8)
        return torch.stack([torch.zeros_like(logit), logit], dim=1)


@pytest.fixture
def real_cohort(tmp_path: Path) -> dict[str, Path]:
    """Four 24^3 sphere volumes, one corrupt file, a scripted BrightSphere model and a manifest."""
    data = tmp_path / "data"
    data.mkdir()
    for index in range(4):
        write_volume(data / f"case{index}.nii.gz", sphere_volume(index))
    (data / "broken.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    model = data / "sphere.ts"
    torch.jit.script(BrightSphere().eval()).save(str(model))
    rows = [{"image": f"case{i}.nii.gz", "id": f"c{i}", "target": "1"} for i in range(4)]
    rows.insert(1, {"image": "broken.nii.gz", "id": "broken", "target": "1"})
    manifest = write_manifest(data / "manifest.csv", rows)
    return {"data": data, "manifest": manifest, "model": model}
