"""A crop's certificate on the full input removes voxels as the search did: the same canvas, the run's seed; and
a canvas that removes the evidence only on the crop is found out before the search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
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


class CentreBlocks(nn.Module):
    """Background and ``labels`` labels; label k is predicted in its 4^3 block beside the centre of the input (the
    blocks side by side along the first axis), with logit 10 x (the block's mean - 1.5) + g x voxels / 12,000,
    g = max(0, 1 - mean |x|), -10 elsewhere. On an image of 1 +- 0.1 with the blocks at 3, g = 0; with the body
    occluded by constant 0, g = 1 and the image's size decides: "keeps" on the whole 64^3 image (+6.8), not on a
    48^3 crop (-5.8) — a canvas that removes the evidence only from the crop; the ``mean`` canvas (~1) removes it
    from both (-5)."""

    def __init__(self, labels: int = 1) -> None:
        super().__init__()
        self.labels = labels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x[0, 0].numel()
        gate = (1.0 - x.abs().mean(dim=(1, 2, 3, 4))).clamp(min=0.0)
        centre = [n // 2 for n in x.shape[2:]]
        outputs = [torch.zeros_like(x[:, :1])]
        for label in range(self.labels):
            block = (slice(centre[0] - 2 * self.labels + 4 * label, centre[0] - 2 * self.labels + 4 * label + 4),
                     *(slice(c - 2, c + 2) for c in centre[1:]))
            decision = 10.0 * (x[(slice(None), slice(None), *block)].mean(dim=(1, 2, 3, 4)) - 1.5) + gate * size / 12_000
            logit = torch.full_like(x[:, :1], -10.0)
            logit[(slice(None), slice(None), *block)] = decision.view(-1, 1, 1, 1, 1)
            outputs.append(logit)
        return torch.cat(outputs, 1)


def _blocks_image(labels: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """A 64^3 body of 1 +- 0.1 (seed 0) with `CentreBlocks`' blocks at 3; and each block's mask."""
    image = np.random.default_rng(0).normal(1.0, 0.1, (1, 64, 64, 64)).astype(np.float32)
    blocks = []
    for label in range(labels):
        block = np.zeros((64, 64, 64), bool)
        start = 32 - 2 * labels + 4 * label
        block[start:start + 4, 30:34, 30:34] = True
        image[0][block] = 3.0
        blocks.append(block)
    return image, blocks


def _on_the_block(result, block: np.ndarray) -> None:
    """The map's peak is in the block, and the sufficient explanation holds block voxels and none farther than
    the search's parts reach past it (2 voxels)."""
    values = np.clip(result.map, 0, None)
    assert block[np.unravel_index(np.argmax(values), values.shape)]
    sufficient = result.masks["sufficient"]
    assert sufficient[block].any() and not sufficient[~ndimage.binary_dilation(block, np.ones((3, 3, 3)), 2)].any()


def test_the_next_canvas_is_checked_on_the_full_input_when_the_first_removes_the_evidence_from_the_crop_only():
    """``constant`` (tried first: the model does not normalise) loses the decision on the 48^3 crop but not on the
    full input; the run does not stop there: ``mean`` is checked on the full input too (one more pass), removes
    the evidence there, and the explanation searched on it is certified on the full input."""
    image, (block,) = _blocks_image(1)
    result = explain(volume_of(image), model=loaded(CentreBlocks(1)), region=block, seed=0, progress=False,
                     iterations=3)
    assert result.summary()["crop"]["size"] == [48, 48, 48]
    assert result.stats["occlusion_used"] == "mean"
    assert result.certificate["verdict"] == "pass", result.certificate
    assert any(warning.startswith("occlusion constant removes the evidence from the crop searched but not from the "
                                  "full input") for warning in result.stats["warnings"])
    _on_the_block(result, block)


def test_target_all_on_a_crop_checks_the_shared_canvas_on_the_full_input():
    """``--target all`` searched on one crop: the shared canvas must remove every label's evidence from the full
    input too (one full pass scores every label); ``constant`` does so only on the crop, so ``mean`` is shared,
    and both labels are certified on the full input."""
    image, blocks = _blocks_image(2)
    result = explain(volume_of(image), model=loaded(CentreBlocks(2), labels=["background", "a", "b"]), target="all",
                     seed=0, progress=False, iterations=3)
    assert result.stats["shared_search"]["occlusion"] == "mean"
    assert result.stats["shared_search"]["searched_together"] == 2
    for item, block in zip(result, blocks, strict=True):
        assert item.details["crop"]["size"] == [48, 48, 48]
        assert item.certificate["verdict"] == "pass", item.certificate
        _on_the_block(item, block)


class WideBox(nn.Module):
    """Foreground logit 20 x (the mean of x over the 41^3 box around each voxel, zero outside the input, - 1): a
    voxel's output reads 20 voxels each way, so a crop agrees with the whole image only where its margin reaches
    that far."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x
        for axis in range(3):
            kernel, padding = [1, 1, 1], [0, 0, 0]
            kernel[axis], padding[axis] = 41, 20
            mean = nn.functional.avg_pool3d(mean, tuple(kernel), stride=1, padding=tuple(padding))
        logit = 20.0 * (mean - 1.0)
        return torch.cat([torch.zeros_like(logit), logit], 1)


def _wide_box_case(size: int) -> tuple:
    """A 16^3 region at 3 in the middle of a ``size``^3 image of ones: `WideBox`, the image, the target, the
    prediction."""
    image = torch.ones((1, 1, size, size, size))
    region = torch.zeros((size,) * 3, dtype=torch.bool)
    middle = slice(size // 2 - 8, size // 2 + 8)
    region[middle, middle, middle] = True
    image[0, 0][region] = 3.0
    model = as_model(WideBox())
    probs = model.predict(image)
    return model, image, RegionTarget(1, "x", region, reference_score=float(probs[0, 1][region].mean())), probs


def test_the_crop_grows_until_its_score_agrees_and_keeps_that_score_for_the_search():
    """A 16^3 region of a 128^3 image: the 48^3 crop (margin 16) cuts off what the region reads, the 80^3 crop
    (margin 32) agrees exactly; the crop's (score, holds, margin) is kept, so the search does not score it again."""
    model, image, target, probs = _wide_box_case(128)
    found = crop.find_context_crop(model, image, target, "rex", probs)
    assert found is not None and found.size == (80, 80, 80)
    assert [tried["size"] for tried in found.tried] == [[48, 48, 48], [80, 80, 80]] and found.passes == 2
    assert abs(found.tried[0]["score"] - found.full_score) > crop.TOLERANCE
    assert found.crop_score == pytest.approx(found.full_score, abs=1e-5)
    assert found.outcome == (found.crop_score, True, pytest.approx(found.crop_score - 0.5 * target.reference_score))


def test_no_crop_holding_more_than_half_the_grid():
    """On a 96^3 image the agreeing 80^3 crop would hold 58% of the grid: no crop (the search runs on the image)."""
    model, image, target, probs = _wide_box_case(96)
    assert crop.find_context_crop(model, image, target, "rex", probs) is None
