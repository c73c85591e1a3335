"""Models whose true cause is known by construction, and volumes to go with them.

They are real torch networks (convolution, gating, max pooling) with hand-set weights, small enough to
script, export and convert to ONNX, so every explainer and every model format can be checked against a
cause placed by hand: an explanation either finds it or it does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import nn


def ball(shape: Sequence[int], centre: Sequence[float], radius: float) -> np.ndarray:
    """Bool mask of a ball (disc in 2D) of ``radius`` voxels."""
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    return sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= radius**2


def cube(shape: Sequence[int], corner: Sequence[float], side: int | Sequence[int]) -> np.ndarray:
    """Bool mask of an axis-aligned cube (square in 2D) from voxel ``corner`` (its lowest index on each axis,
    truncated to an integer) with ``side`` voxels per axis, or a box with one side per axis; clipped to the grid."""
    sides = [side] * len(shape) if np.isscalar(side) else side
    mask = np.zeros(shape, dtype=bool)
    ends = [(int(c), int(c) + int(s)) for c, s in zip(corner, sides, strict=True)]
    mask[tuple(slice(max(0, lo), max(0, hi)) for lo, hi in ends)] = True
    return mask


class SpotDetector(nn.Module):
    """Detects a bright spot inside fixed gated regions; everything outside the gates is ignored.

    ``local = conv(x)`` is the local mean brightness (a box filter over the weighted channels); each gate r
    gives the evidence ``e_r = max over the gate of local``. The decision combines gates with ``any`` (a
    disjunctive cause: either spot suffices) or ``all`` (a conjunctive cause: every spot is needed):
    ``logit = gain * (combine_r e_r - threshold)``.

    Output: classification ``(B, 2)`` [absent, present] logits, or ``(B, 1)`` with ``single_logit``; with
    ``segment`` a segmentation ``(B, 2, *S)`` whose foreground is ``segment`` (a fixed region elsewhere in
    the image) when the evidence is present — its cause is the spot, not the region itself.
    """

    def __init__(
        self,
        gates: np.ndarray,
        *,
        combine: str = "any",
        channel_weights: Sequence[float] = (1.0,),
        threshold: float = 0.6,
        gain: float = 20.0,
        kernel: int = 5,
        single_logit: bool = False,
        segment: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        spatial_dims = gates.ndim - 1
        conv = nn.Conv3d if spatial_dims == 3 else nn.Conv2d
        weights = torch.tensor(channel_weights, dtype=torch.float32)
        self.local = conv(len(channel_weights), 1, kernel, padding=kernel // 2, bias=False)
        with torch.no_grad():
            shape = (1, len(channel_weights)) + (kernel,) * spatial_dims
            self.local.weight.copy_(
                (weights / weights.sum()).reshape(1, -1, *([1] * spatial_dims)).expand(shape) / kernel**spatial_dims
            )
        self.register_buffer("gates", torch.as_tensor(gates, dtype=torch.float32))
        region = segment if segment is not None else np.zeros(0)
        self.register_buffer("segment", torch.as_tensor(region, dtype=torch.float32))
        self.combine_all = combine == "all"
        self.threshold = threshold
        self.gain = gain
        self.single_logit = single_logit
        self.segmenting = segment is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = self.local(x)  # (B, 1, *S)
        gated = local * self.gates[None] - 10.0 * (1.0 - self.gates[None])  # (B, R, *S)
        evidence = gated.flatten(2).amax(dim=2)  # (B, R)
        combined = evidence.amin(dim=1) if self.combine_all else evidence.amax(dim=1)
        logit = self.gain * (combined - self.threshold)  # (B,)
        if self.segmenting:
            level = logit.reshape([-1] + [1] * (x.dim() - 2))
            region = self.segment[None] > 0
            foreground = torch.where(region, level, torch.full_like(self.segment[None], -10.0))
            return torch.stack([torch.zeros_like(foreground), foreground], dim=1)
        if self.single_logit:
            return logit[:, None]
        return torch.stack([torch.zeros_like(logit), logit], dim=1)


@dataclass
class KnownCase:
    """A synthetic image (C, *S), the model, and the masks of what causes its decision."""

    image: np.ndarray
    model: SpotDetector
    causes: list[np.ndarray]
    decoys: list[np.ndarray]
    segment: np.ndarray | None = None


def _body(shape: Sequence[int], rng: np.random.Generator, channels: int) -> np.ndarray:
    """A dim noisy ellipsoid "body" in air: the foreground the explainer should search."""
    centre = [s / 2 - 0.5 for s in shape]
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    inside = sum(((g - c) / (0.46 * s)) ** 2 for g, c, s in zip(grids, centre, shape, strict=True)) <= 1
    image = np.zeros((channels, *shape), dtype=np.float32)
    image[:, inside] = 0.3 + 0.03 * rng.standard_normal((channels, int(inside.sum())))
    return image


def make_case(
    kind: str = "single",
    *,
    size: int = 32,
    spatial_dims: int = 3,
    channels: int = 1,
    seed: int = 0,
    cause_channel: int | None = None,
) -> KnownCase:
    """Build a known-cause case.

    Args:
        kind: ``single`` (one cause + a same-brightness decoy the model ignores), ``disjunctive`` (either of
            two spots suffices), ``conjunctive`` (both needed), ``sigmoid`` (single cause, one output logit),
            ``segmenter`` (a segmenter whose predicted region, a fixed box, exists because of a spot elsewhere).
        size: edge length; spatial_dims: 2 or 3; channels: input channels.
        cause_channel: with several channels, the only channel the model reads (the spot is drawn in all of
            them, the decoy too), e.g. T1c of a 4-sequence MRI.
    """
    rng = np.random.default_rng(seed)
    shape = (size,) * spatial_dims
    image = _body(shape, rng, channels)
    radius = max(3.0, size / 10)
    first = [int(size * 0.32)] * spatial_dims
    second = [int(size * 0.68)] * spatial_dims
    second[0] = int(size * 0.32)
    decoy_at = [int(size * 0.68)] * spatial_dims
    a = ball(shape, first, radius)
    b = ball(shape, second, radius)
    decoy_half = int(radius * 0.8)
    decoy = cube(shape, [c - decoy_half for c in decoy_at], 2 * decoy_half + 1)
    spots = [a, b] if kind in ("disjunctive", "conjunctive") else [a]
    for spot in [*spots, decoy]:
        image[:, spot] = 1.0
    gate_radius = radius + 3
    centres = [first, second][: len(spots)]
    gates = np.stack([ball(shape, centre, gate_radius) for centre in centres])
    weights = _channel_weights(channels, cause_channel)
    segment = None
    if kind == "segmenter":
        segment_half = max(1, size // 10)
        segment = cube(shape, [int(size * 0.5) - segment_half] * spatial_dims, 2 * segment_half + 1)
    model = SpotDetector(
        gates,
        combine="all" if kind == "conjunctive" else "any",
        channel_weights=weights,
        single_logit=kind == "sigmoid",
        segment=segment,
    ).eval()
    return KnownCase(image=image, model=model, causes=spots, decoys=[decoy], segment=segment)


class EdgeReader(nn.Module):
    """Detects a sharp-edged object inside the body: it reads edges, not brightness.

    ``contrast = |x - local mean|`` (a 3-voxel box), smoothed by a 5-voxel box, is the edge evidence; its
    maximum over ``interior`` (the body eroded, so the body's own outline does not count) gives
    ``logit = gain * (evidence - threshold)`` for class 1. A bright ball with a sharp rim passes; a smooth
    blob of the same brightness does not. Because it reads edges, an occlusion canvas that differs from the
    tissue around a pasted box (``min``: air, ``constant`` 0: air here) draws an edge the model takes as
    evidence, so scraps of plain tissue pass: the case every occlusion choice and certificate must survive.
    Output: ``(B, 2)`` [absent, present] logits.
    """

    def __init__(self, interior: np.ndarray, *, threshold: float = 0.05, gain: float = 200.0) -> None:
        super().__init__()
        self.register_buffer("interior", torch.as_tensor(interior, dtype=torch.float32))
        self.threshold = threshold
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = nn.functional.avg_pool3d if x.ndim == 5 else nn.functional.avg_pool2d
        tissue = x.mean(dim=1, keepdim=True)
        contrast = (tissue - pool(tissue, 3, stride=1, padding=1, count_include_pad=False)).abs()
        edges = pool(contrast, 5, stride=1, padding=2, count_include_pad=False)
        gated = edges * self.interior - (1.0 - self.interior)
        logit = self.gain * (gated.flatten(1).amax(dim=1) - self.threshold)
        return torch.stack([torch.zeros_like(logit), logit], dim=1)


def make_edge_case(*, size: int = 40, spatial_dims: int = 3, seed: int = 0) -> KnownCase:
    """An `EdgeReader` case: a sharp bright ball (the cause) and a smooth blob of the same peak brightness
    (the decoy the model ignores) in a noisy body; ball and blob positions vary with ``seed``."""
    rng = np.random.default_rng(seed)
    shape = (size,) * spatial_dims
    image = _body(shape, rng, 1)
    body = image[0] > 0
    radius = max(3.0, size / 10)
    near, far = int(size * 0.36), int(size * 0.64)
    places = [[near] * spatial_dims, [far] * spatial_dims]
    places[1][0] = near
    order = rng.permutation(2)
    cause = ball(shape, places[order[0]], radius)
    image[0, cause] = 1.0
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    distance = np.sqrt(sum((g - c) ** 2 for g, c in zip(grids, places[order[1]], strict=True)))
    blob = np.exp(-0.5 * (distance / radius) ** 2).astype(np.float32)
    image[0] = np.where(body, np.maximum(image[0], 0.3 + 0.7 * blob), image[0])
    decoy = distance <= radius
    interior = ndimage.binary_erosion(body, iterations=4)
    return KnownCase(image=image, model=EdgeReader(interior).eval(), causes=[cause], decoys=[decoy])


class KnownCauseNet(SpotDetector):
    """`SpotDetector` of a `make_case` case built from plain arguments, so a model card or a MONAI bundle
    config (``{"_target_": "voxcause.testing.KnownCauseNet", "kind": "single", "size": 24}``) can name it."""

    def __init__(
        self,
        kind: str = "single",
        size: int = 24,
        spatial_dims: int = 3,
        channels: int = 1,
        cause_channel: int | None = None,
    ) -> None:
        case = make_case(kind, size=size, spatial_dims=spatial_dims, channels=channels, cause_channel=cause_channel)
        source = case.model
        gates = source.gates.numpy()
        segment = source.segment.numpy() if source.segmenting else None
        super().__init__(
            gates,
            combine="all" if source.combine_all else "any",
            channel_weights=_channel_weights(channels, cause_channel),
            single_logit=source.single_logit,
            segment=segment,
        )


def _channel_weights(channels: int, cause_channel: int | None) -> list[float]:
    if cause_channel is None:
        return [1.0] * channels
    weights = [1e-6] * channels
    weights[cause_channel] = 1.0
    return weights
