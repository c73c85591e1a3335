"""A crop's explanation is held to the certificate's margin on the full input (`voxcause.crop.hold_on_full`).

Known cause by construction: the segmenter's foreground probability everywhere is sigmoid(24 (m - 1/2)), m the
mean of a 4^3 cause block, so shown alone on a zero canvas the explanation keeps the decision by the margin
(score >= 0.5 + KEEP_MARGIN x 0.5 = 0.55) exactly when it shows at least 33 of the block's 64 voxels.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from voxcause.crop import hold_on_full
from voxcause.explanation import Attribution
from voxcause.models.protocol import as_model
from voxcause.targets import RegionTarget

BLOCK = (slice(4, 8),) * 3
SHAPE = (12, 12, 12)
NEEDED = 33  # voxels of the block that keep the decision by the margin


class BlockMean(nn.Module):
    """Two classes; the foreground logit pair (-l, l) with l = 12 (mean of the block - 1/2), the same everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit = 12.0 * (x[(slice(None), slice(None), *BLOCK)].mean(dim=(1, 2, 3, 4)) - 0.5)
        foreground = logit.view(-1, 1, 1, 1, 1).expand(-1, 1, *x.shape[2:])
        return torch.cat([-foreground, foreground], 1)


def _run(shown_voxels: int) -> tuple[Attribution, torch.Tensor, tuple[float, float] | None]:
    image = torch.zeros((1, 1, *SHAPE))
    image[(0, 0, *BLOCK)] = 1.0
    block = torch.zeros(SHAPE, dtype=torch.bool)
    block[BLOCK] = True
    responsibility = block.float() * torch.linspace(2.0, 1.0, block.numel()).reshape(SHAPE)  # the block ranks first
    order = torch.argsort(responsibility.flatten(), descending=True)[:shown_voxels]
    sufficient = torch.zeros(block.numel(), dtype=torch.bool)
    sufficient[order] = True
    region = torch.zeros(SHAPE, dtype=torch.bool)
    region[0:2, 0:2, 0:2] = True
    target = RegionTarget(1, "lesion", region, reference_score=1.0)
    attribution = Attribution(map=responsibility, masks={"sufficient": sufficient.reshape(SHAPE)}, stats={},
                              details={"sufficient": {"found": True, "voxels": shown_voxels, "fraction": 0.1,
                                                      "score": 0.0}, "crop": {}})
    model = as_model(BlockMean())
    original = float(target.margin(model.predict(image))[0])
    kept = hold_on_full(model, image, target, attribution, torch.zeros_like(image), torch.ones(SHAPE, dtype=torch.bool),
                        original)
    return attribution, block, kept


def test_a_borderline_explanation_grows_along_the_ranking_until_it_keeps_the_margin():
    attribution, block, kept = _run(30)
    grown = attribution.masks["sufficient"]
    assert int(grown.sum()) == NEEDED and bool((grown <= block).all())
    assert attribution.details["crop"]["grown_on_full"] == NEEDED - 30
    assert attribution.details["sufficient"]["voxels"] == NEEDED
    assert attribution.details["sufficient"]["score"] >= 0.55
    # what the certificate's sufficient_alone reads instead of scoring the grown explanation again
    assert kept == (attribution.details["sufficient"]["score"], pytest.approx(kept[0] - 0.5))


def test_an_explanation_that_keeps_the_margin_is_left_as_it_is():
    attribution, _, kept = _run(40)
    assert int(attribution.masks["sufficient"].sum()) == 40
    assert attribution.details["crop"]["grown_on_full"] == 0
    assert kept is not None and kept[1] >= 0.05  # kept by the margin as it was
