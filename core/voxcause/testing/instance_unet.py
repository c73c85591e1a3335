"""A small InstanceNorm U-Net that segments bright spheres and ignores same-brightness cubes, with its volumes.

Real networks normalise every image (InstanceNorm, z-scoring): occluding evidence with a constant does not
remove it the way it does for a plain CNN, and a crop changes the statistics every layer sees. This network has
those properties at test size: MONAI's ``UNet`` with instance normalisation (``norm="instance"``: each image's
own statistics, in training and in use), trained by ``scripts/train_instance_unet.py`` on `make_volume` cases
(weights committed in ``testing/models/instance_unet/``, ~100 KB). Two cards over the same weights:
``whole.json`` (one pass over the whole image) and ``windowed.json`` (32^3 Gaussian windows, overlap 0.25).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .known_cause import ball, cube

FOLDER = Path(__file__).parent / "models" / "instance_unet"
WHOLE_CARD = FOLDER / "whole.json"
WINDOWED_CARD = FOLDER / "windowed.json"
NETWORK = {
    "_target_": "monai.networks.nets.UNet",
    "spatial_dims": 3,
    "in_channels": 1,
    "out_channels": 2,
    "channels": [8, 16, 32],
    "strides": [2, 2],
    "num_res_units": 0,
    "norm": "instance",
}
BRIGHTNESS = 1.5  # spheres and cubes above the noise (standard deviation 0.5)


def make_volume(
    size: int | tuple[int, ...], rng: np.random.Generator, *, spheres: int = 2, cubes: int = 2
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(image (*S) float32, label (*S) uint8: the spheres, [each sphere's mask]): noise on a smooth ramp, spheres
    of radius 3-5 voxels (label 1) and cubes of side 5-8 (label 0) of the same brightness, apart from each other."""
    shape = (size,) * 3 if isinstance(size, int) else tuple(size)
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    image = rng.normal(0.0, 0.5, shape) + 0.3 * grids[int(rng.integers(3))]
    taken = np.zeros(shape, bool)
    label = np.zeros(shape, np.uint8)
    balls: list[np.ndarray] = []
    for kind in ["sphere"] * spheres + ["cube"] * cubes:
        for _ in range(50):
            extent = int(rng.integers(3, 6)) if kind == "sphere" else int(rng.integers(5, 9))
            margin = extent + 2
            centre = [int(rng.integers(margin, n - margin)) for n in shape]
            mask = ball(shape, centre, extent) if kind == "sphere" else cube(
                shape, [c - extent // 2 for c in centre], extent)
            guard = ball(shape, centre, extent + 4)
            if not (guard & taken).any():
                break
        taken |= mask
        image[mask] += BRIGHTNESS
        if kind == "sphere":
            label[mask] = 1
            balls.append(mask)
    return image.astype(np.float32), label, balls


def region_case(centre: tuple[int, int, int], size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """((1, *S) float32 image, sphere mask): noise with one sphere (radius 4) at ``centre``, the region to explain
    and its cause, and two same-brightness cubes the network ignores — the region case of the tests and of
    ``bench/bench_region.py``."""
    rng = np.random.default_rng(3)
    shape = (size,) * 3
    image = rng.normal(0.0, 0.5, shape)
    sphere = ball(shape, centre, 4)
    image[sphere] += BRIGHTNESS
    image[cube(shape, (40, 40, 40), 7)] += BRIGHTNESS
    image[cube(shape, (44, 10, 30), 6)] += BRIGHTNESS
    return image.astype(np.float32)[None], sphere
