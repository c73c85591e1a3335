"""Known-cause models with hand-set weights (2D and 3D; classifiers and a segmenter) and their inputs.

Input channel 0 carries the cause (a bright ball), channel 1 a same-brightness decoy cube the model
ignores by construction. Layer ``conv1`` box-filters each input channel (feature 0 = cause, feature 1 =
decoy), ``conv2`` copies features, the head reads feature 0 only:

* ``CauseClassifier(nd, pool="avg")``: logit_1 = gain * mean(relu(conv2)) - offset (one cause).
* ``CauseClassifier(nd, pool="max")`` with two balls: a *disjunctive* cause (either ball alone keeps the
  logit; hiding one changes nothing).
* ``CauseSegmenter(nd)``: a 1x1 head, foreground logit = gain * feature 0 - offset per voxel.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from voxcause.targets import ClassTarget, RegionTarget


def _conv(nd: int, cin: int, cout: int, k: int) -> nn.Module:
    cls = nn.Conv3d if nd == 3 else nn.Conv2d
    return cls(cin, cout, k, padding=k // 2)


class _Features(nn.Module):
    def __init__(self, nd: int) -> None:
        super().__init__()
        self.nd = nd
        self.conv1 = _conv(nd, 2, 4, 3)
        self.act1 = nn.ReLU()
        self.conv2 = _conv(nd, 4, 4, 3)
        self.act2 = nn.ReLU()
        with torch.no_grad():
            self.conv1.weight.zero_()
            self.conv1.bias.fill_(-0.25)
            box = 1.0 / 3**nd
            self.conv1.weight[0, 0] = box  # feature 0: cause channel
            self.conv1.weight[1, 1] = box  # feature 1: decoy channel
            self.conv1.weight[2, 0] = -box  # feature 2: negative evidence, zero after ReLU here
            self.conv2.weight.zero_()
            self.conv2.bias.zero_()
            centre = (1,) * nd
            for i in range(4):
                self.conv2.weight[(i, i, *centre)] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(self.conv2(self.act1(self.conv1(x))))


class CauseClassifier(nn.Module):
    """Two-class classifier whose class-1 logit reads only the cause channel."""

    def __init__(self, nd: int = 3, *, pool: str = "avg", gain: float | None = None, offset: float = 2.0) -> None:
        super().__init__()
        if gain is None:  # logit_1 is about 2 on ``case(nd)``: confident, not saturated
            gain = 5.0 if pool == "max" else {2: 120.0, 3: 1800.0}[nd]
            offset = 1.5 if pool == "max" else offset
        self.features = _Features(nd)
        self.pool = pool
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.zero_()
            self.fc.weight[1, 0] = gain
            self.fc.bias[1] = -offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).flatten(2)
        pooled = f.mean(-1) if self.pool == "avg" else f.max(-1).values
        return self.fc(pooled)


class CauseSegmenter(nn.Module):
    """Two-class segmenter: foreground where the (box-filtered) cause channel is bright."""

    def __init__(self, nd: int = 3, *, gain: float = 20.0, offset: float = 5.0) -> None:
        super().__init__()
        self.features = _Features(nd)
        self.head = _conv(nd, 4, 2, 1)
        with torch.no_grad():
            self.head.weight.zero_()
            self.head.bias.zero_()
            self.head.weight[1, 0] = gain
            self.head.bias[1] = -offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def ball(shape: tuple[int, ...], centre: tuple[int, ...], radius: float) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= radius**2


def cube(shape: tuple[int, ...], corner: tuple[int, ...], size: int) -> np.ndarray:
    out = np.zeros(shape, bool)
    out[tuple(slice(c, c + size) for c in corner)] = True
    return out


def case(nd: int = 3, *, size: int | None = None, disjunctive: bool = False, seed: int = 0):
    """Return (inputs (1, 2, *s) tensor, cause mask (*s) bool ndarray, decoy mask) for a known-cause case."""
    size = size or (16 if nd == 3 else 40)
    shape = (size,) * nd
    rng = np.random.default_rng(seed)
    q1, q3 = size // 4, (3 * size) // 4
    radius = size / 8
    cause = ball(shape, (q1,) * nd, radius)
    if disjunctive:
        cause = cause | ball(shape, (q3,) * nd, radius)
        decoy = cube(shape, (q1 - 2,) + (q3 - 2,) * (nd - 1), int(radius * 1.6))
    else:
        decoy = cube(shape, (q3 - 2,) * nd, int(radius * 1.6))
    x = 0.05 * rng.standard_normal((2, *shape)).astype(np.float32)
    x[0][cause] += 1.0
    x[1][decoy] += 1.0
    return torch.from_numpy(x[None]), cause, decoy


def class_target(index: int = 1) -> ClassTarget:
    """The real `voxcause.targets.ClassTarget` for class ``index`` of a two-class model."""
    return ClassTarget(index, str(index))


def region_target(index: int, region) -> RegionTarget:
    """The real `voxcause.targets.RegionTarget`: class ``index`` inside ``region``."""
    return RegionTarget(index, str(index), torch.as_tensor(region).bool())


def dilate(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=iterations)


def mass_inside(attribution: torch.Tensor | np.ndarray, mask: np.ndarray) -> float:
    """Share of the positive attribution inside ``mask``."""
    a = np.clip(np.asarray(attribution, dtype=np.float64), 0, None)
    total = a.sum()
    return float(a[mask].sum() / total) if total > 0 else 0.0
