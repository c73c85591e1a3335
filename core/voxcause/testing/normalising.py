"""Known-cause models that defeat plain occlusion: one that normalises each image (InstanceNorm) and one whose
output saturates on real evidence but sits at the threshold on a canvas (issue 23)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .known_cause import KnownCase, ball


class NormalisingSpotNet(nn.Module):
    """An InstanceNorm network that finds a bright spot and, like HD-BET, calls a featureless image positive.

    ``z = InstanceNorm(x)``; ``spot`` = the maximum over the image of z's 5-voxel box mean; ``texture`` = mean |z|.
    ``logit = 2 (spot - 3) + 60 relu(0.2 - texture)``. A constant image becomes z = 0 (texture 0: logit +6, the
    decision kept whatever the constant), so constant, mean and min canvases cannot remove the evidence; a
    canvas of the body's own voxels shuffled keeps the texture (about 0.7) and scatters the spot: logit < 0.
    Output ``(B, 2)`` [absent, present] logits.
    """

    def __init__(self, bias: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm3d(1)
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.norm(x)
        spot = nn.functional.avg_pool3d(z, 5, stride=1, padding=2, count_include_pad=False).flatten(1).amax(1)
        texture = z.abs().flatten(1).mean(1)
        logit = 2.0 * (spot - 3.0) + 60.0 * torch.relu(0.2 - texture) + self.bias
        return torch.stack([torch.zeros_like(logit), logit], dim=1)


def make_normalising_case(*, size: int = 24, seed: int = 0, bias: float = 0.0) -> KnownCase:
    """A crop inside tissue (no air: noisy tissue fills the field of view) with a bright ball, the cause of a
    `NormalisingSpotNet`; ``bias`` > 20 makes a model that keeps its decision on every canvas."""
    rng = np.random.default_rng(seed)
    shape = (size,) * 3
    image = (0.3 + 0.03 * rng.standard_normal((1, *shape))).astype(np.float32)
    cause = ball(shape, [int(size * 0.35)] * 3, max(3.0, size / 8))
    image[0, cause] = 1.0
    return KnownCase(image=image, model=NormalisingSpotNet(bias).eval(), causes=[cause], decoys=[])


class SaturatingReader(nn.Module):
    """A 2D classifier that saturates on a small bright ``cause`` and sits at the threshold otherwise.

    ``e_g`` = max over gate g of relu(3x3 mean - 0.6); ``logit = 60 e_cause + 0.03 e_edge - 0.001``: on a canvas
    with no evidence the probability is 0.49975, a bright strip in the ``edge`` gate alone lifts it to about
    0.5003 (the decision "kept", by 0.0003), the cause to 1.0. So an explanation of the strip alone passes a
    certificate without margins (the false pass seen on a real VGG16 meningioma classifier, issue 23).
    """

    def __init__(self, cause_gate: np.ndarray, edge_gate: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("gates", torch.as_tensor(np.stack([cause_gate, edge_gate]), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = nn.functional.avg_pool2d(x.mean(1, keepdim=True), 3, stride=1, padding=1, count_include_pad=False)
        evidence = (torch.relu(local - 0.6) * self.gates[None]).flatten(2).amax(2)  # (B, 2)
        logit = 60.0 * evidence[:, 0] + 0.03 * evidence[:, 1] - 0.001
        return torch.stack([torch.zeros_like(logit), logit], dim=1)


__all__ = ["NormalisingSpotNet", "SaturatingReader", "make_normalising_case"]
