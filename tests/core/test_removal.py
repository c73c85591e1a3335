"""One removal vocabulary (issue 22): every name means one thing wherever it is used — the causal engine's
occlusion, occlusion and Score-CAM's baseline, the certificate and the counterfactual's region-only image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from voxcause import explain
from voxcause.counterfactual.region_only import keep_region
from voxcause.errors import InputError
from voxcause.removal import REMOVALS, as_removal, canvas
from voxcause.testing import loaded, make_case, volume_of


def test_each_removal_gives_its_documented_values():
    image = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    assert bool((canvas(image, "constant", value=3.0) == 3.0).all())
    assert bool((canvas(image, "zero", value=3.0) == 0.0).all())  # zero is 0 whatever the constant
    assert bool((canvas(image, 2.5) == 2.5).all()) and bool((canvas(image, "2.5") == 2.5).all())
    per_channel = canvas(image, "constant", value=[1.0, 7.0])
    assert per_channel[0, 0].unique().tolist() == [1.0] and per_channel[0, 1].unique().tolist() == [7.0]
    minimum = canvas(image, "min")
    assert minimum[0, 0].unique().tolist() == [0.0] and minimum[0, 1].unique().tolist() == [16.0]
    body = torch.zeros(4, 4, dtype=torch.bool)
    body[0, :2] = True
    mean = canvas(image, "mean", foreground=body)
    assert mean[0, 0, 3, 3] == pytest.approx(0.5) and mean[0, 1, 0, 0] == pytest.approx(16.5)
    blurred = canvas(image, "blur")
    assert blurred.shape == image.shape and float(blurred.std()) < float(image.std())
    where = torch.zeros(4, 4, dtype=torch.bool)
    where[1, 1] = True
    partial = canvas(image, "constant", value=-1.0, where=where)
    assert torch.equal(partial[0, :, 1, 1], torch.tensor([-1.0, -1.0]))
    assert int((partial != image).sum()) == 2 and bool((image >= 0).all())  # the input is not modified
    with pytest.raises(InputError, match="resample it first"):
        canvas(image, "context", context=torch.zeros(1, 1, 4, 4))
    with pytest.raises(InputError, match="unknown removal 'noise'"):
        as_removal("noise")


def test_scramble_keeps_the_whole_histogram_and_no_outline():
    """``scramble`` moves every voxel, air included, channels together, seeded: the image's histogram is kept
    exactly, tissue lands in air and air in the body; ``shuffle`` moves the body's voxels only (air stays air)."""
    rng = np.random.default_rng(0)
    image = torch.zeros(1, 2, 12, 12, 12)
    image[0, 0, 3:9, 3:9, 3:9] = torch.from_numpy(rng.uniform(1, 2, (6, 6, 6)).astype(np.float32))
    image[0, 1] = 10 * image[0, 0]  # channel 1 = 10 x channel 0 wherever a voxel is: moved together, it stays so
    body = image[0, 0] > 0
    scrambled = canvas(image, "scramble", seed=3)
    assert torch.equal(scrambled, canvas(image, "scramble", seed=3))
    assert not torch.equal(scrambled, canvas(image, "scramble", seed=4))
    assert torch.equal(scrambled[0].flatten(1).sort(dim=1).values, image[0].flatten(1).sort(dim=1).values)
    assert torch.allclose(scrambled[0, 1], 10 * scrambled[0, 0])
    assert float((scrambled[0, 0][~body] > 0).float().mean()) == pytest.approx(216 / 1728, abs=0.05)  # tissue in air
    shuffled = canvas(image, "shuffle", foreground=body, seed=3)
    assert bool((shuffled[0, :, ~body] == 0).all()) and not torch.equal(shuffled, image)
    inside = canvas(image, "scramble", where=body, seed=3)
    assert bool((inside[0, :, ~body] == 0).all()) and float((inside[0, 0][body] == 0).float().mean()) > 0.7


def test_mean_is_the_body_mean_for_every_method():
    """``mean`` is the body's mean in the engine's canvas and in the counterfactual, not the image's (air in)."""
    case = make_case("single", size=16, seed=0)
    image = torch.from_numpy(case.image)[None]
    body = torch.from_numpy(case.image[0] > 0)
    level = float(case.image[0][case.image[0] > 0].mean())
    assert float(canvas(image, "mean")[0, 0, 8, 8, 8]) == pytest.approx(level, rel=1e-5)
    region = np.zeros(case.image.shape[1:], dtype=bool)
    region[2:4, 2:4, 2:4] = True
    only = keep_region(case.image, region, baseline="mean", foreground=body.numpy())
    assert float(only[0, 8, 8, 8]) == pytest.approx(level, rel=1e-5)
    assert set(REMOVALS) >= {"zero", "constant", "mean", "min", "blur", "context"}


@pytest.mark.parametrize("baseline", ["zero", "mean"])
def test_the_certificate_removes_with_the_methods_declared_removal(baseline, monkeypatch):
    """Occlusion at its default ``zero`` is certified on a zero canvas (before: on the canvas occlusion auto
    chose, air kept), and at ``mean`` on the body mean; Score-CAM and dea declare the same option."""
    import voxcause.api as api

    used = []
    original = api._certificate_baseline

    def spy(*args, **kwargs):
        used.append(original(*args, **kwargs))
        return used[-1]

    monkeypatch.setattr(api, "_certificate_baseline", spy)
    case = make_case("single", size=16, seed=0)
    image = case.image + 1.0  # air at 1, so a canvas that keeps air is told apart from a zero one
    explain(volume_of(image), model=loaded(case.model), method="occlusion", baseline=baseline)
    expected = canvas(torch.from_numpy(image)[None], baseline)
    assert torch.equal(used[0], expected)
