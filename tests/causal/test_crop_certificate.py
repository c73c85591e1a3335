"""A crop's certificate on the full input removes voxels as the search did: the same canvas, the run's seed; and
a canvas that removes the evidence only on the crop is found out before the search."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from voxcause import crop, explain
from voxcause.causal.auto import occludable_region
from voxcause.explanation import Attribution
from voxcause.models.protocol import as_model
from voxcause.removal import canvas
from voxcause.targets import RegionTarget
from voxcause.testing import loaded, volume_of

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


class SizeDecides(nn.Module):
    """Foreground logit everywhere: 20 x the mean of the central 4^3 block, plus (voxels / 100,000 - 2): with the
    block's content gone the image's size still decides — "brain" on the whole 64^3 image (logit +0.62), not on a
    48^3 crop (-0.89): a stand-in for a network that reads the whole image (InstanceNorm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = (slice(None), slice(None), *(slice(n // 2 - 2, n // 2 + 2) for n in x.shape[2:]))
        logit = 20.0 * x[centre].mean(dim=(1, 2, 3, 4)) + x[0, 0].numel() / 100_000 - 2.0
        foreground = logit.view(-1, 1, 1, 1, 1).expand(-1, 1, *x.shape[2:])
        return torch.cat([-foreground, foreground], 1)


def test_a_canvas_that_removes_the_evidence_only_on_the_crop_fails_before_the_search():
    """The crop's canvas is checked on the full input first (one pass): the certificate on the full input could
    only fail, so no search is spent, and the reason says why (not the controls that are its symptom)."""
    rng = np.random.default_rng(0)
    image = rng.normal(1.0, 0.1, (1, 64, 64, 64)).astype(np.float32)
    region = np.zeros((64, 64, 64), bool)
    region[30:34, 30:34, 30:34] = True
    image[0][region] = 3.0
    result = explain(volume_of(image), model=loaded(SizeDecides()), region=region, seed=0, progress=False)
    assert result.summary()["crop"]["size"] == [48, 48, 48]
    assert result.certificate["verdict"] == "fail"
    assert result.certificate["reason"].startswith("on the full input the fully occluded image")
    assert result.stats["iterations"]["stopped"] == "undecidable"
    assert result.stats["forward_passes"] < 30  # the prediction, the crop, the canvas probes, the full check: no search
