"""Each metric on tiny inputs whose answer is computed by hand: a perfect, a reversed and a random ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from voxcause.errors import InputError
from voxcause.evaluate import (
    auc,
    faithfulness_correlation,
    off_target_leakage,
    perturbation_curve,
    pointing_game,
    random_reference,
    ranking,
    relevance_mass,
    relevance_rank_accuracy,
    spearman,
    top_fraction_iou,
)
from voxcause.evaluate.robustness import compare, perturb, robustness

# A 2x2x2 volume; the region is the first two voxels (flattened order).
REGION = np.array([1, 1, 0, 0, 0, 0, 0, 0], bool).reshape(2, 2, 2)
PERFECT = np.array([8, 7, 6, 5, 4, 3, 2, 1], float).reshape(2, 2, 2)
REVERSED = PERFECT[::-1, ::-1, ::-1].copy()  # 1 ... 8
RANDOM = np.array([3, 8, 1, 6, 2, 7, 5, 4], float).reshape(2, 2, 2)  # a fixed "random" order


def test_pointing_game():
    assert pointing_game(PERFECT, REGION) == 1.0
    assert pointing_game(REVERSED, REGION) == 0.0
    assert pointing_game(RANDOM, REGION) == 1.0  # 8 sits at index 1, inside
    assert math.isnan(pointing_game(PERFECT, np.zeros_like(REGION)))


def test_relevance_mass():
    assert relevance_mass(PERFECT, REGION) == pytest.approx(15 / 36)
    assert relevance_mass(REVERSED, REGION) == pytest.approx(3 / 36)
    assert relevance_mass(RANDOM, REGION) == pytest.approx(11 / 36)
    assert relevance_mass(np.where(REGION, 1.0, 0.0), REGION) == 1.0


def test_relevance_rank_accuracy():
    assert relevance_rank_accuracy(PERFECT, REGION) == 1.0
    assert relevance_rank_accuracy(REVERSED, REGION) == 0.0
    assert relevance_rank_accuracy(RANDOM, REGION) == 0.5  # top-2 = {8 (in), 7 (out)}


def test_off_target_leakage():
    line = np.zeros(10)
    line[2] = 1.0
    region = np.zeros(10, bool)
    region[2] = True
    amap = np.array([0, 0, 4, 0, 0, 1, 0, 0, 0, -3], float)  # negative values do not count
    assert off_target_leakage(amap, region, dilation=2) == pytest.approx(1 / 5)
    assert off_target_leakage(amap, region, dilation=3) == pytest.approx(0.0)
    assert off_target_leakage(amap, region, dilation=0) == pytest.approx(1 / 5)


def test_auc_and_ranking():
    assert auc([0, 0.5, 1], [1, 1, 1]) == pytest.approx(1.0)
    assert auc([0, 0.5, 1], [1, 0, 0]) == pytest.approx(0.25)
    assert list(ranking(PERFECT)) == list(range(8))
    assert list(ranking(REVERSED)) == list(range(7, -1, -1))
    flat = ranking(np.zeros(8), seed=1)
    assert sorted(flat) == list(range(8)) and list(flat) != list(range(8))  # ties broken at random


def _additive_score(weights: torch.Tensor):
    """score(x) = sum of x * weights over voxels: deleting a voxel costs exactly its weight."""
    return lambda batch: (batch[:, 0] * weights).flatten(1).sum(1)


def test_deletion_and_insertion_by_hand():
    weights = torch.tensor([0.4, 0.3, 0.2, 0.1])
    x = torch.ones(1, 1, 4)  # a 1-D "image" is enough for the curve logic
    score = _additive_score(weights)
    perfect = ranking(np.array([4.0, 3, 2, 1]))
    reverse = ranking(np.array([1.0, 2, 3, 4]))
    deletion = perturbation_curve(score, x, perfect, kind="deletion", steps=4)
    assert np.allclose(deletion.scores, [1.0, 0.6, 0.3, 0.1, 0.0])
    assert deletion.auc == pytest.approx((1.0 + 0.0) / 8 + (0.6 + 0.3 + 0.1) / 4)  # 0.375
    reversed_deletion = perturbation_curve(score, x, reverse, kind="deletion", steps=4)
    assert np.allclose(reversed_deletion.scores, [1.0, 0.9, 0.7, 0.4, 0.0])
    insertion = perturbation_curve(score, x, perfect, kind="insertion", steps=4)
    assert np.allclose(insertion.scores, [0.0, 0.4, 0.7, 0.9, 1.0])
    assert insertion.auc == pytest.approx(0.625)
    # a random ranking's expected deletion curve is linear: AUC 0.5 on average
    ref = random_reference(score, x, baselines=("constant",), steps=4, repeats=200)
    assert ref[("deletion", "constant")].auc == pytest.approx(0.5, abs=0.03)


def test_blur_and_inpaint_baselines_run():
    x = torch.zeros(1, 1, 12, 12, 12)
    x[..., 4:8, 4:8, 4:8] = 1.0
    weights = (x[0, 0] > 0).float()
    score = _additive_score(weights)
    order = ranking(weights)
    for baseline in ("blur", "inpaint"):
        curve = perturbation_curve(score, x, order, kind="deletion", baseline=baseline, steps=4)
        assert curve.scores[0] == pytest.approx(64.0)
        assert curve.scores[1] < 0.7 * 64  # the cube is gone after 1/4 of the voxels (blur keeps a little)
    with pytest.raises(InputError, match="unknown baseline"):
        perturbation_curve(score, x, order, baseline="noise")


def test_faithfulness_correlation_by_hand():
    torch.manual_seed(0)
    weights = torch.rand(4, 4, 4)
    x = torch.rand(1, 1, 4, 4, 4)
    score = _additive_score(weights)
    contribution = (x[0, 0] * weights).numpy()  # the exact effect of removing each voxel
    rng = np.random.RandomState
    assert faithfulness_correlation(score, x, contribution, subset_size=8, runs=20, rng=rng(0)) == pytest.approx(1.0)
    assert faithfulness_correlation(score, x, -contribution, subset_size=8, runs=20, rng=rng(0)) == pytest.approx(-1.0)
    noise = np.random.default_rng(0).random(contribution.shape)
    assert abs(faithfulness_correlation(score, x, noise, subset_size=8, runs=20, rng=rng(0))) < 0.6
    with pytest.raises(InputError, match="subset_size"):
        faithfulness_correlation(score, x, contribution, subset_size=0)


def test_rank_agreement_and_top_iou():
    a = np.arange(100, dtype=float)
    assert spearman(a, a) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert top_fraction_iou(a, a, fraction=0.05) == 1.0
    assert top_fraction_iou(a, -a, fraction=0.05) == 0.0
    assert math.isnan(top_fraction_iou(a, np.zeros(100))) and math.isnan(spearman(a, np.zeros(100)))
    shifted = np.roll(a, 2)  # top-5 = {95..99} vs {93..97}: 3 shared of 7
    assert top_fraction_iou(a, shifted, fraction=0.05) == pytest.approx(3 / 7)


def test_robustness_shift_roundtrip():
    x = torch.rand(1, 1, 6, 6, 6)
    moved, k = perturb(x, "shift2")
    assert k == 2 and torch.equal(torch.roll(moved, (-2, -2, -2), (2, 3, 4)), x)
    numbers = compare(x[0, 0], moved[0, 0], k)  # a map that moves with its input is perfectly robust
    assert numbers["spearman"] == pytest.approx(1.0) and numbers["top5_iou"] == 1.0
    for name in ("noise", "scale", "gamma"):
        changed, k = perturb(x, name)
        assert k == 0 and changed.shape == x.shape and not torch.equal(changed, x)


def test_robustness_gives_each_explanation_its_shift():
    x = torch.rand(1, 1, 6, 6, 6)
    seen = []

    def explain(changed, shift):  # a map that moves with its input: perfectly robust to shifts
        seen.append(shift)
        return changed[0, 0]

    numbers = robustness(explain, x, x[0, 0], perturbations=("shift1", "shift2", "scale"))
    assert seen == [1, 2, 0]
    assert numbers["shift1"]["spearman"] == pytest.approx(1.0) and numbers["shift2"]["top5_iou"] == 1.0
    assert numbers["scale"]["spearman"] == pytest.approx(1.0)  # a monotone change keeps the ranking
