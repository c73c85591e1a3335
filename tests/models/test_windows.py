"""Sliding-window models score a region from only the windows that overlap it (voxcause.models.windows).

Exact, not approximate: the region's score from the restricted windows equals the full stitched run's (1e-5),
for a card's MONAI windows and for nnU-Net's own; a region inside one window of a 4x4x4 / 3x3x3 layout costs one
window per mutant instead of 64 / 27.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from voxcause.models import load_model
from voxcause.models.windows import overlapping, shifted
from voxcause.targets import RegionTarget

sys.path.insert(0, str(Path(__file__).parent))

from test_throughput import segmenter_cards  # noqa: E402

NNUNET = Path(__file__).parent / "nnunet" / "Dataset500_Spheres" / "nnUNetTrainer_Tiny__nnUNetPlans_tiny__3d_fullres"


def _region(shape: tuple[int, ...], box: tuple[slice, ...]) -> torch.Tensor:
    region = torch.zeros(shape, dtype=torch.bool)
    region[box] = True
    return region


def _scores(model, inputs: torch.Tensor, target: RegionTarget) -> tuple[torch.Tensor, int, torch.Tensor, int]:
    """(score from the full run, its window passes, score from the region's windows, their window passes)."""
    before = model.window_passes
    with torch.no_grad():
        full = target.score(model.predict(inputs))
        middle = model.window_passes
        restricted = target.score(model.predict(inputs, box=target.box))
    return full, middle - before, restricted, model.window_passes - middle


@pytest.mark.parametrize(
    ("box", "windows"),
    [
        ((slice(1, 5), slice(2, 6), slice(3, 8)), 1),  # a corner region: one window of the 64
        ((slice(14, 20), slice(20, 26), slice(30, 34)), 8),  # where windows overlap
    ],
)
def test_card_windows_score_the_region_exactly_from_its_windows(tmp_path, box, windows):
    _, card = segmenter_cards(tmp_path)
    model = load_model(card)  # 16^3 Gaussian windows; overlap 0.25 here: 4 windows per axis of 48 (interval 12)
    model.card = model.card.with_overrides(sliding_window=replace(model.sliding_window, overlap=0.25))
    inputs = torch.rand((3, 1, 48, 48, 48), generator=torch.Generator().manual_seed(0)) * 1.2
    target = RegionTarget(1, "spot", _region((48, 48, 48), box))
    full, full_windows, restricted, region_windows = _scores(model, inputs, target)
    assert full_windows == 3 * 64
    assert region_windows == 3 * windows  # per mutant: only the windows overlapping the region
    assert float((full - restricted).abs().max()) < 1e-5
    assert full_windows >= 5 * region_windows or windows > 1


def test_card_windows_reach_is_the_union_of_the_region_windows(tmp_path):
    _, card = segmenter_cards(tmp_path)
    model = load_model(card)  # 16^3 windows, overlap 0.5: interval 8
    reach = model.reach((slice(1, 5), slice(2, 6), slice(9, 12)), (40, 40, 40))
    assert reach == (slice(0, 16), slice(0, 16), slice(0, 24))


def test_nnunet_windows_score_the_region_exactly_from_its_windows():
    pytest.importorskip("nnunetv2")
    model = load_model(NNUNET, device="cpu")  # two folds; patch 24 x 32 x 32, step 0.5
    shape = (48, 64, 64)  # 3 x 3 x 3 = 27 windows
    inputs = torch.randn((2, 1, *shape), generator=torch.Generator().manual_seed(1))
    inputs[:, :, 6:14, 8:20, 8:20] += 3.0  # something bright for the model to segment
    box = (slice(2, 10), slice(3, 12), slice(4, 14))
    target = RegionTarget(1, "sphere", _region(shape, box))
    full, full_windows, restricted, region_windows = _scores(model, inputs, target)
    assert full_windows == 2 * 2 * 27  # mutants x folds x windows
    assert region_windows == 2 * 2 * 1
    assert full_windows >= 5 * region_windows
    assert float((full - restricted).abs().max()) < 1e-5
    offsets, windows = model._layout(shape)
    assert len(overlapping(windows, shifted(box, offsets))) == 1
    assert model.reach(box, shape) == (slice(0, 24), slice(0, 32), slice(0, 32))
