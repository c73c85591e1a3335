"""Convolutional known-cause models with hand-set weights (2D and 3D; classifiers and a segmenter), their inputs
and targets: the models the gradient and layer methods (Grad-CAM and kin) are checked on.

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

from ..targets import ClassTarget, RegionTarget
from .known_cause import ball, cube


def _conv(nd: int, cin: int, cout: int, k: int) -> nn.Module:
    cls = nn.Conv3d if nd == 3 else nn.Conv2d
    return cls(cin, cout, k, padding=k // 2)


def _read_feature_zero(head: nn.Module, gain: float, offset: float) -> None:
    """Set ``head`` (linear or 1x1 convolution, 4 features -> 2 classes) to class 0 = 0, class 1 = gain * feature 0 - offset."""
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.weight[1, 0] = gain
        head.bias[1] = -offset


class _Features(nn.Module):
    def __init__(self, nd: int) -> None:
        super().__init__()
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
        if gain is None:  # logit_1 is about 2 on ``make_conv_case(nd)``: confident, not saturated
            gain = 5.0 if pool == "max" else {2: 120.0, 3: 1800.0}[nd]
            offset = 1.5 if pool == "max" else offset
        self.features = _Features(nd)
        self.pool = pool
        self.fc = nn.Linear(4, 2)
        _read_feature_zero(self.fc, gain, offset)

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
        _read_feature_zero(self.head, gain, offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_conv_case(
    nd: int = 3, *, size: int | None = None, disjunctive: bool = False, seed: int = 0
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """(inputs (1, 2, *S) tensor, cause mask (*S) bool ndarray, decoy mask) of a `CauseClassifier` /
    `CauseSegmenter` case: a ball in channel 0 (two with ``disjunctive``), a cube in channel 1, in noise."""
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
    """The `voxcause.targets.ClassTarget` for class ``index`` of a two-class model (named by its index)."""
    return ClassTarget(index, str(index))


def region_target(index: int, region: np.ndarray | torch.Tensor) -> RegionTarget:
    """The `voxcause.targets.RegionTarget` of class ``index`` inside ``region`` (named by its index)."""
    return RegionTarget(index, str(index), torch.as_tensor(region).bool())
