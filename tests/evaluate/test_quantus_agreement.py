"""Our localisation and faithfulness numbers agree with Quantus 0.6.0 on 3D input (channel_first=True).

Skipped where Quantus is not installed (it is in the development venv; see PEERS.md for what runs in 3D).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from voxcause.evaluate import faithfulness_correlation, pointing_game, relevance_mass, relevance_rank_accuracy

quantus = pytest.importorskip("quantus", reason="quantus is not installed")


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 8, 10, 12)).astype(np.float32)
    region = np.zeros((1, 1, 8, 10, 12), np.float32)
    region[0, 0, 2:5, 3:7, 4:9] = 1
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv3d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten()
    ).eval()
    return x, region, net


def _maps(region):
    rng = np.random.default_rng(1)
    noise = rng.random(region.shape).astype(np.float32)
    return {"random": noise, "good": noise + 2 * region, "reversed": noise + 2 * (1 - region),
            "signed": rng.standard_normal(region.shape).astype(np.float32)}


@pytest.mark.parametrize("name", ["random", "good", "reversed", "signed"])
@pytest.mark.parametrize(
    ("metric", "ours"),
    [("PointingGame", pointing_game), ("RelevanceMassAccuracy", relevance_mass),
     ("RelevanceRankAccuracy", relevance_rank_accuracy)],
)
def test_localisation_metrics_agree(setup, metric, ours, name):
    x, region, net = setup
    a = _maps(region)[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(quantus, metric)(disable_warnings=True)(
            model=net, x_batch=x, y_batch=np.array([1]), a_batch=a, s_batch=region, channel_first=True, device="cpu"
        )
    # Quantus normalises by the maximum first: the ratios and ranks it reports do not change.
    mine = ours(a[0, 0] / np.abs(a).max() if metric != "RelevanceMassAccuracy" else a[0, 0], region[0, 0].astype(bool))
    assert float(theirs[0]) == pytest.approx(mine, abs=1e-5)


@pytest.mark.parametrize("name", ["random", "good", "signed"])
def test_faithfulness_correlation_agrees(setup, name):
    x, region, net = setup
    a = _maps(region)[name]
    np.random.seed(7)  # Quantus draws its subsets from the global numpy state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = quantus.FaithfulnessCorrelation(
            nr_runs=25, subset_size=40, perturb_baseline=0.0, normalise=False, abs=False, disable_warnings=True
        )(model=net, x_batch=x, y_batch=np.array([1]), a_batch=a, channel_first=True, device="cpu", softmax=False)
    mine = faithfulness_correlation(
        lambda batch: net(batch)[:, 1], torch.from_numpy(x), a[0, 0], subset_size=40, runs=25,
        baseline=0.0, rng=np.random.RandomState(7),
    )
    assert float(theirs[0]) == pytest.approx(mine, abs=1e-4)
