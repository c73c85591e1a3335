"""dea (dual-evidence fusion) on the trained MONAI UNet (48^3, a bright sphere): its parts are volumes on the
model grid in [0, 1], its gradient half uses the Seg-Grad-CAM layer, and the fused map keeps at least the
intervention half's mass on the cause."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from known_cause_monai import build, segmentation_case
from scipy import ndimage
from voxcause.fusion import DualEvidence
from voxcause.saliency._hooks import hook_count
from voxcause.testing import positive_share, region_target

PARTS = ("gradient", "intervention", "stability", "agreement", "weight")


@pytest.fixture(scope="module")
def unet_case():
    torch.set_num_threads(1)
    net = build("unet", weights=True)
    x, cause = segmentation_case(np.random.default_rng(1))
    inputs = torch.from_numpy(x)[None, None]
    with torch.no_grad():
        region = net(inputs).argmax(1)[0].bool()
    return net, inputs, region_target(1, region), cause


def test_dea_on_a_trained_unet(unet_case):
    net, inputs, target, cause = unet_case
    result = DualEvidence(net, cell=12, n_noise=2, seed=0).attribute(inputs, target=target)
    assert result.stats["layer"] == "model.1"
    for name in PARTS:
        part = result.details[name]
        assert tuple(part.shape) == (48, 48, 48)
        assert float(part.min()) >= 0.0 and float(part.max()) <= 1.0 + 1e-6
    assert result.details["labels"].dtype == torch.int64  # region labels: a volume, written as a file
    grown = ndimage.binary_dilation(cause, iterations=2)
    assert positive_share(result.map, grown) >= positive_share(result.details["intervention"], grown) - 1e-6
    assert positive_share(result.map, grown) >= 0.4
    assert result.stats["backward_passes"] == 3  # the clean map and 2 noisy copies
    assert result.stats["warnings"] == []
    assert hook_count(net) == 0


def test_dea_params_are_its_declared_options(unet_case):
    net, _, _, _ = unet_case
    params = DualEvidence(net, cell=8, n_noise=2, seed=3).params()
    assert params["cell"] == 8 and params["n_noise"] == 2 and params["seed"] == 3
    assert set(params) == {option.name for option in DualEvidence.options.declared()}
