"""Shared pieces of the Slicer-module tests (a uniquely named module, so no other test folder's helpers shadow it)."""

import json
from pathlib import Path

import numpy as np

FAKE_CLI = Path(__file__).with_name("fake_voxcause.py")

#: Grid of the synthetic case: (z, y, x) voxels, spacing (x, y, z) mm, LPS origin, lesion centre (z, y, x).
SHAPE = (20, 24, 28)
SPACING = (1.0, 1.25, 1.5)
ORIGIN = (10.0, -20.0, 5.0)
LESION = (11, 9, 18)


def make_image(path: Path) -> Path:
    """A smooth 'head' with one bright sphere (the lesion), with non-trivial spacing and origin."""
    import SimpleITK as sitk

    z, y, x = np.indices(SHAPE)
    head = 100.0 * np.exp(-(((z - 10) / 12.0) ** 2 + ((y - 12) / 14.0) ** 2 + ((x - 14) / 16.0) ** 2))
    lesion = ((z - LESION[0]) ** 2 + (y - LESION[1]) ** 2 + (x - LESION[2]) ** 2) <= 9
    array = (head + 150.0 * lesion).astype(np.float32)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    sitk.WriteImage(image, str(path))
    return path


def write_model(tmp_path: Path, behaviour: str) -> Path:
    path = tmp_path / f"model-{behaviour}.json"
    path.write_text(json.dumps({"behaviour": behaviour}))
    return path
