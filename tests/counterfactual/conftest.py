"""Known-cause phantoms and hand-set-weight models for the counterfactual tests.

The phantom is a 40³ "head" (tissue ~100 with texture, air 0) holding a bright sphere (the cause) in the
left half and a same-brightness cube (the decoy) in the right half. The classifier's lesion logit is the
maximum of a 5³ box-filter "bright blob detector" over the left half only: it reacts to the sphere and,
by construction, never to the decoy. The segmenter labels voxels whose box-filtered intensity is bright,
again only in the left half.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

SIZE = 40
SPHERE_CENTRE = (20, 20, 11)  # (z, y, x): left half (x < 20)
SPHERE_RADIUS = 4.5
DECOY = (slice(16, 24), slice(16, 24), slice(26, 34))  # right half
BRIGHT = 300.0
TISSUE = 100.0


def phantom(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image (1, 40, 40, 40) float32, sphere mask, decoy mask)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:SIZE, :SIZE, :SIZE]
    head = (z - 19.5) ** 2 + (y - 19.5) ** 2 + ((x - 19.5) / 1.05) ** 2 < 18.5**2
    tissue = TISSUE + 0.6 * (x - 20) + rng.normal(0.0, 4.0, head.shape)
    image = np.where(head, tissue, 0.0)
    sphere = (z - SPHERE_CENTRE[0]) ** 2 + (y - SPHERE_CENTRE[1]) ** 2 + (x - SPHERE_CENTRE[2]) ** 2 <= SPHERE_RADIUS**2
    decoy = np.zeros(head.shape, bool)
    decoy[DECOY] = True
    image[sphere] = BRIGHT + rng.normal(0.0, 4.0, int(sphere.sum()))
    image[decoy] = BRIGHT + rng.normal(0.0, 4.0, int(decoy.sum()))
    return image[None].astype(np.float32), sphere, decoy


class BlobDetector(torch.nn.Module):
    """logits (B, 2) = [-s, s], s = 0.05 * (max over the left half of the 5³ box mean - 200)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 1, 5, padding=2, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(1.0 / 125.0)
        gate = torch.zeros(1, 1, SIZE, SIZE, SIZE)
        gate[..., : SIZE // 2] = 1.0
        self.register_buffer("gate", gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        response = self.conv(x) * self.gate
        peak = response.flatten(1).amax(dim=1)
        s = 0.05 * (peak - 200.0)
        return torch.stack([-s, s], dim=1)


class BlobSegmenter(torch.nn.Module):
    """logits (B, 2, *S): class 1 where the 5³ box mean exceeds 200, left half only."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 1, 5, padding=2, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(1.0 / 125.0)
        gate = torch.zeros(1, 1, SIZE, SIZE, SIZE)
        gate[..., : SIZE // 2] = 1.0
        self.register_buffer("gate", gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = 0.05 * (self.conv(x) - 200.0) * self.gate - 20.0 * (1.0 - self.gate)
        return torch.cat([-s, s], dim=1)


def write_volume(array: np.ndarray, path: Path, *, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)) -> Path:
    image = sitk.GetImageFromArray(np.asarray(array))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture(scope="session")
def known_cause(tmp_path_factory) -> dict:
    """Files and arrays of the known-cause setting: image, masks, TorchScript classifier and segmenter."""
    folder = tmp_path_factory.mktemp("known_cause")
    image, sphere, decoy = phantom()
    torch.jit.script(BlobDetector().eval()).save(str(folder / "classifier.ts"))
    torch.jit.script(BlobSegmenter().eval()).save(str(folder / "segmenter.ts"))
    (folder / "classifier.json").write_text(
        '{"name": "blob-detector", "model": "classifier.ts", "task": "classification", '
        '"labels": ["healthy", "lesion"], "activation": "softmax"}')
    (folder / "segmenter.json").write_text(
        '{"name": "blob-segmenter", "model": "segmenter.ts", "task": "segmentation", '
        '"labels": ["background", "lesion"], "activation": "softmax"}')
    write_volume(image[0], folder / "image.nii.gz")
    write_volume(sphere.astype(np.uint8), folder / "sphere.nii.gz")
    write_volume(decoy.astype(np.uint8), folder / "decoy.nii.gz")
    return {"folder": folder, "image": image, "sphere": sphere, "decoy": decoy,
            "classifier": folder / "classifier.json", "segmenter": folder / "segmenter.json"}
