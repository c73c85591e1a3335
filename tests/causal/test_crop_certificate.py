"""A crop's certificate on the full input removes voxels as the search did: the same canvas, the run's seed."""

from __future__ import annotations

import torch
from torch import nn
from voxcause import crop
from voxcause.causal.auto import occludable_region
from voxcause.explanation import Attribution
from voxcause.models.protocol import as_model
from voxcause.removal import canvas
from voxcause.targets import RegionTarget

SHAPE = (10, 10, 10)


class MeanLogit(nn.Module):
    """Two classes, the foreground logit the image's mean - 1/2 at every voxel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit = (x.mean(dim=(1, 2, 3, 4)) - 0.5).view(-1, 1, 1, 1, 1).expand(-1, 1, *x.shape[2:])
        return torch.cat([-logit, logit], 1)


def test_the_shuffle_canvas_of_the_full_input_takes_the_runs_seed(monkeypatch):
    image = torch.rand((1, 1, *SHAPE), generator=torch.Generator().manual_seed(0)) + 0.5
    sufficient = torch.zeros(SHAPE, dtype=torch.bool)
    sufficient[2:6, 2:6, 2:6] = True
    region = torch.zeros(SHAPE, dtype=torch.bool)
    region[:2, :2, :2] = True
    attribution = Attribution(map=sufficient.float(), masks={"sufficient": sufficient},
                              stats={"occlusion_used": "shuffle"}, details={"crop": {}})
    seen = {}
    real = crop.certify

    def spy(*args, **kwargs):
        seen.update(baseline=kwargs["baseline"], seed=kwargs["seed"])
        return real(*args, **kwargs)

    monkeypatch.setattr(crop, "certify", spy)
    model = as_model(MeanLogit())
    crop.certify_on_full(model, image, RegionTarget(1, "x", region, reference_score=1.0), attribution,
                         probs=model.predict(image), seed=7)
    foreground, _, _ = occludable_region(image)
    assert seen["seed"] == 7
    assert torch.equal(seen["baseline"], canvas(image, "shuffle", foreground=foreground, seed=7))
    assert not torch.equal(seen["baseline"], canvas(image, "shuffle", foreground=foreground, seed=0))
