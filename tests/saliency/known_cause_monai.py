"""Small MONAI networks trained on a known cause (``scripts/train_known_cause.py``), and their cases (48^3).

Segmenters (``unet``, ``segresnet``): a bright sphere in noise; every foreground voxel is caused by it.
Classifier (``densenet121``, MONAI's 121-layer topology at small width): sphere (class 1) vs cube (class 0, side 1.8 radius) of
the same brightness, plus a same-brightness bar in every image (the decoy: no label information).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from voxcause.testing import ball, cube

SIZE = 48
SHAPE = (SIZE,) * 3
MODELS = Path(__file__).parent / "models"

NETWORKS = {
    "unet": {
        "kind": "segmentation",
        "target": "monai.networks.nets.UNet",
        "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": (8, 16, 32), "strides": (2, 2)},
        "steps": 150,
        "batch": 4,
        "lr": 3e-3,
    },
    "segresnet": {
        "kind": "segmentation",
        "target": "monai.networks.nets.SegResNet",
        "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "init_filters": 8,
                 "blocks_down": (1, 1, 1), "blocks_up": (1, 1)},
        "steps": 100,
        "batch": 2,
        "lr": 3e-3,
    },
    "densenet121": {
        "kind": "classification",
        "target": "monai.networks.nets.DenseNet121",
        "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "init_features": 8, "growth_rate": 4,
                 "bn_size": 2},
        "steps": 1200,
        "batch": 4,
        "lr": 1e-3,
    },
}


def build(name: str, *, weights: bool = False) -> torch.nn.Module:
    """The network ``name`` (untrained, or with the committed weights)."""
    import importlib

    spec = NETWORKS[name]
    module_name, _, class_name = spec["target"].rpartition(".")
    torch.manual_seed(0)
    net = getattr(importlib.import_module(module_name), class_name)(**spec["args"])
    if weights:
        net.load_state_dict(torch.load(MODELS / f"{name}.pt", map_location="cpu", weights_only=True))
        net.eval()
    return net


def _noise(rng: np.random.Generator) -> np.ndarray:
    return (0.1 * rng.standard_normal(SHAPE)).astype(np.float32)


def segmentation_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(image (48^3) float32, sphere mask): a bright sphere of radius 5-9 voxels in noise."""
    radius = rng.uniform(5, 9)
    centre = rng.uniform(radius + 2, SIZE - radius - 2, size=3)
    cause = ball(SHAPE, centre, radius)
    x = _noise(rng)
    x[cause] += 1.0
    return x, cause


def classification_case(rng: np.random.Generator, label: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, object mask, decoy mask): a sphere (label 1) or a same-volume cube (label 0), and a bar.

    The object sits in one half of the volume along a random axis, the 3x3x16 bar in the other half.
    """
    radius = rng.uniform(5, 7)
    axis = int(rng.integers(3))
    flip = bool(rng.integers(2))
    half = SIZE // 2
    centre = rng.uniform(radius + 2, SIZE - radius - 2, size=3)
    centre[axis] = rng.uniform(radius + 2, half - radius - 1)
    side = int(round(1.8 * radius))
    cause = ball(SHAPE, centre, radius) if label == 1 else cube(SHAPE, np.round(centre - side / 2), side)
    sides = [3, 3, 3]
    long_axis = (axis + 1 + int(rng.integers(2))) % 3
    sides[long_axis] = 16
    corner = [rng.integers(2, SIZE - s - 2) for s in sides]
    corner[axis] = rng.integers(half + 1, SIZE - sides[axis] - 2)
    decoy = cube(SHAPE, corner, sides)
    if flip:
        cause, decoy = np.flip(cause, axis).copy(), np.flip(decoy, axis).copy()
    x = _noise(rng)
    x[cause] += 1.0
    x[decoy] += 1.0
    return x, cause, decoy
