"""A segmenter of several labels, each driven by its own bright object: the known-cause case of ``--target all``.

`LabelSpots` is a real torch network with hand-set weights (a box filter, one gate per label, max pooling):
label k is predicted on a fixed cube inside object k's place exactly when object k is bright, whatever else the
image holds. So every label has one known cause, the others' objects and a decoy of the same brightness are
not causes of it, and one explanation per label can be checked against its own object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .known_cause import _body, ball, cube


class LabelSpots(nn.Module):
    """Segmenter ``(B, 1 + K, *S)``: background logit 0; label k's logit ``gain * (e_k - threshold_k)`` on its
    ``segments[k]`` and -10 elsewhere, ``e_k`` the largest local mean brightness (a ``kernel`` box) inside
    ``gates[k]``. Label k's decision therefore depends on the voxels near gate k only (a negative threshold: on
    none, it is always predicted)."""

    def __init__(self, gates: np.ndarray, segments: np.ndarray, *, threshold: float | Sequence[float] = 0.6,
                 gain: float = 20.0, kernel: int = 5) -> None:
        super().__init__()
        spatial_dims = gates.ndim - 1
        conv = nn.Conv3d if spatial_dims == 3 else nn.Conv2d
        self.local = conv(1, 1, kernel, padding=kernel // 2, bias=False)
        with torch.no_grad():
            self.local.weight.fill_(1.0 / kernel**spatial_dims)
        self.register_buffer("gates", torch.as_tensor(gates, dtype=torch.float32))
        self.register_buffer("segments", torch.as_tensor(segments, dtype=torch.bool))
        thresholds = np.broadcast_to(np.asarray(threshold, dtype=np.float32), (len(gates),)).copy()
        self.register_buffer("thresholds", torch.from_numpy(thresholds))  # per label
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = self.local(x.mean(dim=1, keepdim=True))  # (B, 1, *S)
        gated = local * self.gates[None] - 10.0 * (1.0 - self.gates[None])  # (B, K, *S)
        logits = self.gain * (gated.flatten(2).amax(dim=2) - self.thresholds)  # (B, K)
        level = logits.reshape([logits.shape[0], logits.shape[1]] + [1] * (x.dim() - 2))
        labels = torch.where(self.segments[None], level, torch.full_like(level, -10.0))  # (B, K, *S)
        return torch.cat([torch.zeros_like(labels[:, :1]), labels], dim=1)


@dataclass
class MultiCase:
    """An image (1, *S), the `LabelSpots` model, its label names, each label's cause and the decoy."""

    image: np.ndarray
    model: LabelSpots
    labels: tuple[str, ...]
    causes: list[np.ndarray]
    decoy: np.ndarray


def make_multi_case(size: int = 32, *, labels: int = 3, spatial_dims: int = 3, seed: int = 0) -> MultiCase:
    """``labels`` (at most 4) bright balls in a dim noisy body, each the only cause of its own label, and a
    cube decoy of the same brightness that no label reads. Label k is predicted on a cube inside ball k."""
    if not 1 <= labels <= 4:
        raise ValueError(f"labels must be 1..4, not {labels}")
    rng = np.random.default_rng(seed)
    shape = (size,) * spatial_dims
    image = _body(shape, rng, 1)
    radius = max(3.0, size / 10)
    low, high = int(size * 0.3), int(size * 0.7)
    places: Sequence[Sequence[int]] = [
        [low, low, low], [low, high, high], [high, low, high], [high, high, low]
    ][:labels]
    places = [list(place[:spatial_dims]) for place in places]
    causes = [ball(shape, place, radius) for place in places]
    decoy_half = int(radius * 0.8)
    decoy = cube(shape, [size // 2 - decoy_half] * spatial_dims, 2 * decoy_half + 1)
    for mask in [*causes, decoy]:
        image[:, mask] = 1.0
    gates = np.stack([ball(shape, place, radius + 3) for place in places])
    half = max(1, int(radius) // 2)
    segments = np.stack([cube(shape, [c - half for c in place], 2 * half + 1) for place in places])
    names = tuple(["background", *[f"object {k + 1}" for k in range(labels)]])
    return MultiCase(image=image, model=LabelSpots(gates, segments).eval(), labels=names, causes=causes,
                     decoy=decoy)


class ChannelSpots(nn.Module):
    """Fully convolutional segmenter ``(B, 1 + K, *S)`` of a K-channel image: label k's logit is
    ``gain * (m_k - threshold)``, ``m_k`` channel k's mean over a 3-voxel box, background 0. Label k is predicted
    where channel k is bright, from that place alone, and a crop is segmented as the whole image is there: the
    known-cause case of `voxcause.crop` with several labels."""

    def __init__(self, *, threshold: float = 0.6, gain: float = 20.0) -> None:
        super().__init__()
        self.threshold = threshold
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = nn.functional.avg_pool3d if x.dim() == 5 else nn.functional.avg_pool2d
        logits = self.gain * (pool(x, 3, stride=1, padding=1, count_include_pad=False) - self.threshold)
        return torch.cat([torch.zeros_like(logits[:, :1]), logits], dim=1)


def make_channel_case(size: int = 64, *, labels: int = 3, seed: int = 0) -> MultiCase:
    """A ``labels``-channel 3D image for `ChannelSpots`: a dim noisy body in every channel and ball k bright in
    channel k only, the balls close together near the centre (their regions' box is about a quarter of the
    grid's edge, so a context crop applies)."""
    rng = np.random.default_rng(seed)
    shape = (size,) * 3
    image = _body(shape, rng, labels)
    radius = max(3.0, size / 20)
    low, high = int(size * 0.34), int(size * 0.47)
    places = [[low, low, low], [low, high, high], [high, low, high], [high, high, low]][:labels]
    causes = [ball(shape, place, radius) for place in places]
    for channel, cause in enumerate(causes):
        image[channel, cause] = 1.0
    names = tuple(["background", *[f"object {k + 1}" for k in range(labels)]])
    return MultiCase(image=image, model=ChannelSpots().eval(), labels=names, causes=causes,
                     decoy=np.zeros(shape, dtype=bool))


__all__ = ["ChannelSpots", "LabelSpots", "MultiCase", "make_channel_case", "make_multi_case"]
