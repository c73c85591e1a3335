"""Region-only images and the ΔDrop / ΔFocus arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from voxcause.counterfactual.metrics import deltas, score_variants
from voxcause.counterfactual.region_only import keep_region
from voxcause.counterfactual.regions import foreground_of
from voxcause.errors import InputError
from voxcause.targets import ClassTarget, RegionTarget

from .conftest import phantom


@pytest.mark.parametrize("baseline", ["mean", "constant", "min", "blur", "zero"])
def test_region_is_kept_and_the_rest_suppressed(baseline: str) -> None:
    image, sphere, decoy = phantom()
    before = image.copy()
    only = keep_region(image, sphere, baseline=baseline, value=5.0)
    assert np.array_equal(image, before)
    assert np.array_equal(only[0][sphere], image[0][sphere])
    outside = only[0][~sphere]
    if baseline in ("constant", "zero"):
        assert set(np.unique(outside)) == {5.0 if baseline == "constant" else 0.0}
    elif baseline == "min":
        assert set(np.unique(outside)) == {float(image.min())}
    elif baseline == "mean":
        tissue = foreground_of(image)
        assert np.unique(only[0][~sphere & tissue]).size == 1
        assert np.array_equal(only[0][~tissue], image[0][~tissue])  # air stays air
    else:
        assert only[0][decoy].max() < 0.5 * image[0][decoy].min()  # the decoy is blurred away


def test_region_only_bad_input() -> None:
    image, sphere, _ = phantom()
    with pytest.raises(InputError, match="empty"):
        keep_region(image, np.zeros_like(sphere))
    with pytest.raises(InputError, match="baseline"):
        keep_region(image, sphere, baseline="context")


def test_deltas() -> None:
    assert deltas(0.9, 0.2, 0.8) == pytest.approx({"delta_drop": 0.7, "delta_focus": 0.8, "relative_drop": 0.7 / 0.9})
    assert deltas(0.0, 0.0, 0.3)["relative_drop"] is None


def test_score_variants_classifier_and_segmenter() -> None:
    probs = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    scores = score_variants(probs, target=ClassTarget(1, "lesion"), labels=("healthy", "lesion"),
                            task="classification")
    assert (scores.p_orig, scores.p_remove, scores.p_only) == pytest.approx((0.9, 0.2, 0.7))
    assert scores.delta_drop == pytest.approx(0.7) and scores.delta_focus == pytest.approx(0.7)
    assert [scores.predicted[k]["label"] for k in ("orig", "remove", "only")] == ["lesion", "healthy", "lesion"]
    assert scores.flips() and scores.as_dict()["class_remove"] == "healthy"

    single = torch.tensor([[0.9], [0.1], [0.6]])
    positive = score_variants(single, target=ClassTarget(1, "positive", single_logit=True),
                              labels=("negative", "positive"), task="classification")
    assert positive.delta_drop == pytest.approx(0.8)
    assert [positive.predicted[k]["index"] for k in ("orig", "remove", "only")] == [1, 0, 1]

    region = torch.zeros(4, 4, dtype=torch.bool)
    region[1:3, 1:3] = True
    seg = torch.zeros(3, 2, 4, 4)
    seg[:, 0] = 1.0
    seg[0, 1][region], seg[0, 0][region] = 0.9, 0.1
    seg[2, 1][region], seg[2, 0][region] = 0.6, 0.4
    target = RegionTarget(1, "tumour", region)
    scores = score_variants(seg, target=target, labels=("background", "tumour"), task="segmentation")
    assert (scores.p_orig, scores.p_remove, scores.p_only) == pytest.approx((0.9, 0.0, 0.6))
    assert scores.predicted["orig"]["target_fraction"] == 1.0 and scores.predicted["remove"]["label"] == "background"
