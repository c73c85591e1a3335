"""A *trained* 3D CNN whose cause is known by construction: sphere (class 1) vs cube (class 0) in Gaussian noise.

The network (`SphereCubeCNN`: 4 convolutions, each with batch norm and ReLU — 2x2x2 stride 2, 2x2x2 stride 2,
3x3x3 stride 2, 3x3x3 — a global max pool and a linear head, 2 classes; receptive field 28 voxels) is fully convolutional up
to the pool, so the same weights run on any volume size (64^3 and 128^3 in the benchmark; ~2 / ~18 ms per
sample in onnxruntime on one CPU thread). It is trained by ``scripts/train_sphere_cube_cnn.py`` (fixed seeds, CPU)
on volumes of N(0, ``NOISE``^2) noise holding bright objects of brightness ``BRIGHT`` (plus the same noise):

* class 1 ("sphere"): one sphere, with no, one or two cubes beside it;
* class 0 ("cube"): one or two cubes, no sphere.

So the label is "a sphere is present", whatever cubes are there. A benchmark case (`make_case`) holds one
sphere (the cause) and one cube of the same brightness and about the same volume (the decoy): hiding the
sphere flips the decision to class 0, hiding the cube does not (`check_case` measures both). The weights
ship beside this file (``sphere_cube_cnn.pt``, with ``sphere_cube_cnn.json``: training settings and the
measured accuracy). Needs torch and numpy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

WEIGHTS = Path(__file__).resolve().with_name("sphere_cube_cnn.pt")
INFO = WEIGHTS.with_suffix(".json")
NOISE = 0.25  # background: N(0, NOISE^2)
BRIGHT = 1.0  # objects: BRIGHT + the same noise
RADIUS = 8.0  # benchmark sphere radius (voxels) at every size: the same weights, the same object scale
RADII = (6.0, 10.0)  # training radii (uniform)
CUBE_SIDE = 1.61  # cube side / sphere radius: the same volume as the sphere ((4/3 pi)^(1/3) = 1.612)


class SphereCubeCNN(nn.Module):
    """Logits (B, 2) = [cube, sphere] for a (B, 1, D, H, W) volume of any size (>= 16 voxels per axis)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        half = width // 2
        self.features = nn.Sequential(
            nn.Conv3d(1, half, 2, stride=2), nn.BatchNorm3d(half), nn.ReLU(),
            nn.Conv3d(half, width, 2, stride=2), nn.BatchNorm3d(width), nn.ReLU(),
            nn.Conv3d(width, width, 3, stride=2, padding=1), nn.BatchNorm3d(width), nn.ReLU(),
            nn.Conv3d(width, width, 3, padding=1), nn.BatchNorm3d(width), nn.ReLU(),
        )
        self.head = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.amax(self.features(x), dim=(2, 3, 4))  # global max pool: size-agnostic
        return self.head(pooled)


def load(weights: Path | str = WEIGHTS) -> SphereCubeCNN:
    """The trained network (eval mode, CPU)."""
    network = SphereCubeCNN()
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return network.eval()


def info() -> dict:
    """Training settings and measured accuracy written by the training script."""
    return json.loads(INFO.read_text(encoding="utf-8")) if INFO.exists() else {}


# ---- volumes ----------------------------------------------------------------------------------------------
def sphere_mask(shape: tuple[int, ...], centre, radius: float) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    return sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= radius**2


def cube_mask(shape: tuple[int, ...], corner, side: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(int(c), int(c) + side) for c in corner)] = True
    return mask


def noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return (NOISE * rng.standard_normal(shape)).astype(np.float32)


def paint(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> None:
    """Objects: brightness BRIGHT plus the same noise as the background."""
    image[mask] = BRIGHT + NOISE * rng.standard_normal(int(mask.sum())).astype(np.float32)


def random_volume(size: int, label: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One training volume (size^3) of class ``label`` and the mask of its sphere (empty for class 0)."""
    shape = (size,) * 3
    image = noise(shape, rng)
    cubes = int(rng.integers(0, 3)) if label == 1 else int(rng.integers(1, 3))
    taken = np.zeros(shape, dtype=bool)
    sphere = np.zeros(shape, dtype=bool)
    objects = [("sphere", float(rng.uniform(*RADII)))] if label == 1 else []
    objects += [("cube", float(rng.uniform(*RADII))) for _ in range(cubes)]
    for kind, radius in objects:
        for _ in range(50):  # rejection sampling: objects do not touch
            if kind == "sphere":
                centre = rng.uniform(radius + 1, size - radius - 1, 3)
                mask = sphere_mask(shape, centre, radius)
            else:
                side = max(3, round(CUBE_SIDE * radius * rng.uniform(0.85, 1.15)))
                corner = rng.integers(1, size - side - 1, 3)
                mask = cube_mask(shape, corner, side)
            if not (_dilate(mask, 2) & taken).any():
                break
        taken |= mask
        paint(image, mask, rng)
        if kind == "sphere":
            sphere = mask
    return image, sphere


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(steps):
        grown = out.copy()
        for axis in range(mask.ndim):
            grown |= np.roll(out, 1, axis) | np.roll(out, -1, axis)
        out = grown
    return out


@dataclass
class Case:
    """One benchmark volume: ``image`` (D, H, W) float32, the ``cause`` sphere and the ``decoy`` cube masks."""

    size: int
    image: np.ndarray
    cause: np.ndarray
    decoy: np.ndarray
    radius: float


def make_case(size: int, *, seed: int = 0, radius: float = RADIUS) -> Case:
    """A sphere (the cause) and a same-brightness, same-volume cube (the decoy) in noise, at fixed places."""
    rng = np.random.default_rng(seed)
    shape = (size,) * 3
    image = noise(shape, rng)
    cause = sphere_mask(shape, (0.32 * size, 0.40 * size, 0.36 * size), radius)
    side = round(CUBE_SIDE * radius)
    decoy = cube_mask(shape, [round(f * size - side / 2) for f in (0.66, 0.60, 0.64)], side)
    paint(image, cause, rng)
    paint(image, decoy, rng)
    return Case(size=size, image=image, cause=cause, decoy=decoy, radius=radius)


def check_case(network: nn.Module, case: Case, *, seed: int = 1) -> dict:
    """P(sphere) for the case, with the sphere hidden and with the cube hidden (replaced by fresh noise)."""
    rng = np.random.default_rng(seed)
    variants = {"case": case.image}
    for name, mask in (("sphere_hidden", case.cause), ("cube_hidden", case.decoy)):
        image = case.image.copy()
        image[mask] = NOISE * rng.standard_normal(int(mask.sum())).astype(np.float32)
        variants[name] = image
    with torch.no_grad():
        out = {}
        for name, image in variants.items():
            logits = network(torch.from_numpy(image)[None, None])
            out[name] = round(float(torch.softmax(logits, 1)[0, 1]), 4)
    return out
