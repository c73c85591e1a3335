"""The benchmark's model and volumes: a small 3D CNN with hand-set weights whose true cause is known.

The network (4 convolutions, global max pool, 2 classes) detects a bright *ball* by its shape and ignores a
bright *cube* of the same brightness and volume:

* ``conv1`` (2x2x2, stride 2, threshold): 1 where the tissue is bright, 0 in the dim body and where occluded;
* ``conv2`` (3x3x3 taps dilated by ``a = 0.75 r``): + the centre and the 6 axis points at distance ``a``,
  - the 8 diagonal corners at ``(+-a, +-a, +-a)``; a ball of radius r has its axis points inside and its
  corners (at 1.3 r) outside, while any bright cube that holds the 7 axis taps also holds a corner;
* ``conv3`` (3x3x3, centre-weighted smoothing) and ``conv4`` (1x1x1 gain), then a global max pool and a linear head:
  ``logit_present = 20 * (max - 0.05)``, ``logit_absent = 0``.

Sizes scale with the volume (ball radius ``size / 8``), so 64^3 and 128^3 pose the same problem at two
resolutions. This file needs torch and numpy only (the main environment); the peers' environments get an
ONNX export of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


class SphereDetector(nn.Module):
    """Class 1 ("sphere present") iff a bright ball of radius ~``radius`` is visible; cubes are ignored."""

    def __init__(self, radius: float) -> None:
        super().__init__()
        reach = max(2, round(0.75 * radius / 2))  # in the half-resolution grid after conv1
        self.conv1 = nn.Conv3d(1, 1, 2, stride=2)
        self.conv2 = nn.Conv3d(1, 1, 3, padding=reach, dilation=reach)
        self.conv3 = nn.Conv3d(1, 1, 3, padding=1)
        self.conv4 = nn.Conv3d(1, 1, 1)
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.conv1.weight.fill_(2.5 / 8)  # 2.5 * (2x2x2 mean - 0.6): bright tissue -> ~1, body (0.3) -> < 0
            self.conv1.bias.fill_(-1.5)
            taps = torch.zeros(3, 3, 3)
            for axis in range(3):
                for side in (0, 2):
                    index = [1, 1, 1]
                    index[axis] = side
                    taps[tuple(index)] = 1.0 / 7
            taps[1, 1, 1] = 1.0 / 7
            for i in (0, 2):
                for j in (0, 2):
                    for k in (0, 2):
                        taps[i, j, k] = -1.0
            self.conv2.weight.copy_(taps[None, None])
            self.conv2.bias.fill_(-0.75)  # at least 6 of the 7 ball taps bright, every corner dark
            self.conv3.weight.fill_(0.5 / 26)  # centre-weighted smoothing: keeps a one-voxel peak
            self.conv3.weight[0, 0, 1, 1, 1] = 0.5
            self.conv3.bias.zero_()
            self.conv4.weight.fill_(1.0)
            self.conv4.bias.zero_()
            self.head.weight.copy_(torch.tensor([[0.0], [20.0]]))
            self.head.bias.copy_(torch.tensor([0.0, -1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(h))
        h = torch.relu(self.conv3(h))
        h = self.conv4(h)
        pooled = torch.amax(h, dim=(2, 3, 4))  # global max pool -> (B, 1)
        return self.head(pooled)


class ChannelFree(nn.Module):
    """(N, D, H, W) -> the detector's logits: rex-xai's voxel mode feeds volumes without a channel axis."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x.unsqueeze(1))


@dataclass
class Case:
    """One benchmark volume: ``image`` (D, H, W) float32, the ``cause`` ball and the ``decoy`` cube masks."""

    size: int
    image: np.ndarray
    cause: np.ndarray
    decoy: np.ndarray
    radius: float


def _grid(size: int) -> list[np.ndarray]:
    return np.meshgrid(*[np.arange(size, dtype=np.float32)] * 3, indexing="ij")


def make_case(size: int, *, seed: int = 0) -> Case:
    """A dim noisy ellipsoid body in air, a bright ball (the cause) and a bright cube (the decoy) of equal volume."""
    rng = np.random.default_rng(seed)
    grids = _grid(size)
    centre = (size - 1) / 2
    body = sum(((g - centre) / (0.46 * size)) ** 2 for g in grids) <= 1
    radius = size / 8
    ball_at = (0.32 * size, 0.40 * size, 0.36 * size)
    cause = sum((g - c) ** 2 for g, c in zip(grids, ball_at, strict=True)) <= radius**2
    side = round(1.61 * radius)  # same volume as the ball: (4/3 pi)^(1/3) r
    corner = [round(f * size - side / 2) for f in (0.66, 0.60, 0.64)]
    decoy = np.zeros((size,) * 3, dtype=bool)
    decoy[tuple(slice(c, c + side) for c in corner)] = True
    image = np.zeros((size,) * 3, dtype=np.float32)
    image[body] = 0.3 + 0.03 * rng.standard_normal(int(body.sum())).astype(np.float32)
    image[cause | decoy] = 1.0 + 0.03 * rng.standard_normal(int((cause | decoy).sum())).astype(np.float32)
    return Case(size=size, image=image, cause=cause, decoy=decoy, radius=radius)


def export_onnx(network: nn.Module, size: int, path: str, *, channel_axis: bool = True) -> None:
    """Export with a dynamic batch axis: (N, 1, D, H, W), or (N, D, H, W) for rex-xai."""
    module = network if channel_axis else ChannelFree(network)
    example = torch.zeros((2, 1, size, size, size) if channel_axis else (2, size, size, size))
    torch.onnx.export(module.eval(), (example,), path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False)
