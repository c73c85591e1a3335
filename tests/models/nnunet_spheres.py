"""Generated cases for the nnU-Net v2 test model: one bright sphere (the known cause) inside a noisy 'body'.

Outside the body the image is exactly 0, so nnU-Net's crop-to-nonzero step has something to crop, and the
body is an ellipsoid so its z-score normalisation runs inside the non-zero mask. The sphere is round in
millimetres (radius 5-8 mm) whatever the voxel spacing, so cases at other spacings test nnU-Net's resampling.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

TRAIN_SPACING = (2.0, 1.5, 1.5)  # (z, y, x) mm
TRAIN_SHAPE = (32, 40, 40)


def make_case(
    seed: int,
    *,
    spacing: tuple[float, float, float] = TRAIN_SPACING,
    shape: tuple[int, int, int] = TRAIN_SHAPE,
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    direction: tuple[float, ...] | None = None,
) -> tuple[sitk.Image, sitk.Image]:
    """(image, label) as SimpleITK images; ``spacing``/``shape`` in array (z, y, x) order, origin in (x, y, z)."""
    rng = np.random.default_rng(seed)
    spacing_a = np.asarray(spacing, float)
    grid = np.stack(np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing_a, strict=True)], indexing="ij"))
    extent = np.asarray(shape) * spacing_a
    centre = extent / 2
    semi = extent * np.array([0.42, 0.40, 0.40])
    body = (((grid - centre[:, None, None, None]) / semi[:, None, None, None]) ** 2).sum(0) <= 1.0
    radius = rng.uniform(5.0, 8.0)
    for _ in range(100):
        where = centre + rng.uniform(-1, 1, 3) * (semi - radius - 2) * 0.7
        if (((where - centre) / semi) ** 2).sum() < 0.5:
            break
    sphere = ((grid - where[:, None, None, None]) ** 2).sum(0) <= radius**2
    tissue = rng.normal(100.0, 12.0, shape) + 10.0 * np.sin(grid[2] / 9.0)
    image = np.where(body, tissue, 0.0)
    image[sphere] += 80.0
    image[~body] = 0.0
    label = (sphere & body).astype(np.uint8)
    return _to_sitk(image.astype(np.float32), spacing, origin, direction), _to_sitk(label, spacing, origin, direction)


def _to_sitk(array: np.ndarray, spacing, origin, direction) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in reversed(spacing)))
    image.SetOrigin(tuple(float(o) for o in origin))
    if direction is not None:
        image.SetDirection(tuple(float(d) for d in direction))
    return image


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))
