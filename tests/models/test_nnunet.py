"""nnU-Net v2 results folders as voxcause models (voxcause.models.nnunet).

The model under tests/models/nnunet/ was planned, preprocessed and trained by nnunetv2 itself
(scripts/train_nnunet_sample.py: a reduced 3d_fullres plan, two folds) to segment a bright sphere, the known cause.
The cases here are new ones at another spacing, origin and direction than training, so nnU-Net's resampling,
cropping and the way back to the image's grid are all exercised.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parent))

from nnunet_spheres import dice, make_case  # noqa: E402

pytest.importorskip("nnunetv2")

from voxcause.errors import InputError  # noqa: E402
from voxcause.io import read_image  # noqa: E402
from voxcause.models import load_model  # noqa: E402
from voxcause.models.nnunet import NnUNetModel  # noqa: E402

MODEL = Path(__file__).parent / "nnunet" / "Dataset500_Spheres" / "nnUNetTrainer_Tiny__nnUNetPlans_tiny__3d_fullres"
VOXCAUSE = Path(sys.executable).with_name("voxcause")
# a flipped, shifted case at a spacing the model was not trained at (training: 2.0 x 1.5 x 1.5 mm, identity)
DIRECTION = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def _case(tmp_path: Path, seed: int) -> tuple[Path, np.ndarray]:
    image, label = make_case(seed, spacing=(2.2, 1.6, 1.6), shape=(24, 30, 30), origin=(10.0, -5.0, 3.0),
                             direction=DIRECTION)
    path = tmp_path / f"case{seed}.nii.gz"
    sitk.WriteImage(image, str(path))
    return path, sitk.GetArrayFromImage(label) > 0


def _segment(model: NnUNetModel, path: Path) -> np.ndarray:
    volume = read_image(path)
    inputs = model.prepare(volume)
    with torch.no_grad():
        probs = model.predict(inputs)
    return model.to_image_space(probs[0].argmax(0).float(), volume, order=0) > 0.5


def test_folder_loads_as_nnunet_ensemble_and_segments_a_new_case(tmp_path):
    path, sphere = _case(tmp_path, 7)
    model = load_model(MODEL, device="cpu")
    assert isinstance(model, NnUNetModel)
    assert model.folds == ["0", "1"]
    assert model.card.labels == ("background", "sphere")
    assert model.card.channels == ("T1",)
    assert model.info["mirroring"] is False
    assert any("mirroring is OFF" in warning for warning in model.warnings)
    segmentation = _segment(model, path)
    assert segmentation.shape == sphere.shape
    assert dice(segmentation, sphere) > 0.8
    assert model.window_passes == 2 * model.forward_passes  # one window per image here, two folds


def test_batched_windows_match_nnunet_predictor(tmp_path):
    path, _ = _case(tmp_path, 8)
    model = load_model(MODEL, device="cpu", fold=0)
    inputs = model.prepare(read_image(path))
    ours = torch.softmax(model.forward_raw(inputs.repeat(2, 1, 1, 1, 1)), 1)
    theirs = torch.softmax(model.predict_like_nnunet(inputs), 1)
    # nnUNetPredictor accumulates windows in float16; the probabilities agree to that precision
    assert float((ours[1] - theirs[0]).abs().max()) < 5e-3
    assert torch.equal(ours[0].argmax(0), theirs[0].argmax(0))


def test_one_network_takes_each_folds_weights_in_turn(tmp_path):
    """The ensemble is one network built from the plans with the folds' CPU state dicts swapped in (as
    nnUNetPredictor): its logits are the mean of the single-fold models', and the stored weights stay unchanged."""
    path, _ = _case(tmp_path, 15)
    model = load_model(MODEL, device="cpu")
    networks = {id(module) for module in (model.raw, model.network, model.predictor.network)}
    assert len(networks) == 1 and len(model.fold_weights) == 2
    assert all(t.device.type == "cpu" for state in model.fold_weights for t in state.values())
    first = {name: tensor.clone() for name, tensor in model.fold_weights[0].items()}
    inputs = model.prepare(read_image(path))
    folds = [load_model(MODEL, device="cpu", fold=fold).forward_raw(inputs) for fold in model.folds]
    torch.testing.assert_close(model.forward_raw(inputs), (folds[0] + folds[1]) / 2, rtol=0, atol=1e-5)
    assert not torch.equal(folds[0], folds[1])
    assert all(torch.equal(first[name], tensor) for name, tensor in model.fold_weights[0].items())


def test_fold_selection(tmp_path):
    one = load_model(MODEL, device="cpu", fold=1)
    assert one.folds == ["1"] and len(one.fold_weights) == 1
    by_folder = load_model(MODEL / "fold_0", device="cpu")
    assert by_folder.folds == ["0"]
    with pytest.raises(InputError, match="no fold 3"):
        load_model(MODEL, device="cpu", fold=3)
    # checkpoint_best.pth is used where a fold has no checkpoint_final.pth
    copy = tmp_path / MODEL.name
    shutil.copytree(MODEL, copy)
    (copy / "fold_1" / "checkpoint_final.pth").rename(copy / "fold_1" / "checkpoint_best.pth")
    best = load_model(copy, device="cpu", fold=1)
    assert best.checkpoints[0].endswith("checkpoint_best.pth")


def test_explainers_get_the_plans_spacing(tmp_path):
    """The causal search weighs partition axes by physical extent on the model grid: nnU-Net resamples the case
    (2.2 x 1.6 x 1.6 mm) to the plans' spacing (2.0 x 1.5 x 1.5 mm), so that is the grid's voxel size."""
    path, _ = _case(tmp_path, 9)
    model = load_model(MODEL, device="cpu", fold=0)
    volume = read_image(path)
    inputs = model.prepare(volume)
    spacing = model.grid_spacing(volume)
    assert spacing == pytest.approx((2.0, 1.5, 1.5)) and list(spacing) == list(model.configuration.spacing)
    assert volume.spacing == pytest.approx((2.2, 1.6, 1.6))
    assert len(spacing) == inputs.ndim - 2


def test_nnunet_preprocessing_is_not_overridden():
    with pytest.raises(InputError, match="does not apply to an nnU-Net model"):
        load_model(MODEL, device="cpu", spatial_size=[32, 32, 32])


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # the CLI writes UTF-8 (or backslash escapes on an ASCII stream): decode it as such, whatever the locale
    return subprocess.run([str(VOXCAUSE), *args], capture_output=True, text=True, encoding="utf-8", env=env, timeout=900)


@pytest.mark.slow
def test_cli_explain_puts_the_responsibility_on_the_sphere(tmp_path):
    path, sphere = _case(tmp_path, 11)
    out = tmp_path / "out"
    result = _cli("explain", str(path), "--model", str(MODEL), "--fold", "0", "--threads", "1", "--out", str(out), "--progress", "none")
    assert result.returncode == 0, result.stderr
    image = sitk.ReadImage(str(path))
    saved = sitk.ReadImage(str(out / "map.nii.gz"))
    assert saved.GetSize() == image.GetSize()
    assert np.allclose(saved.GetSpacing(), image.GetSpacing())
    assert np.allclose(saved.GetOrigin(), image.GetOrigin())
    assert np.allclose(saved.GetDirection(), image.GetDirection())
    responsibility = np.clip(sitk.GetArrayFromImage(saved), 0, None)
    near = ndimage.binary_dilation(sphere, iterations=2)
    peak = np.unravel_index(np.argmax(responsibility), responsibility.shape)
    assert near[peak]
    assert responsibility[near].sum() / responsibility.sum() >= 0.9
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["target"]["label"] == "sphere"
    assert any("mirroring is OFF" in warning for warning in summary["warnings"])
    assert summary["stats"]["window_passes"] >= summary["forward_passes"]


def test_occlusion_finds_the_sphere(tmp_path):
    from voxcause import explain

    path, sphere = _case(tmp_path, 14)
    model = load_model(MODEL, device="cpu", fold=1)
    result = explain(path, model=model, method="occlusion")
    near = ndimage.binary_dilation(sphere, iterations=2)
    assert result.map.shape == sphere.shape
    assert near[np.unravel_index(np.argmax(result.map), result.map.shape)]


def test_cli_counterfactual_removing_the_sphere_flips_the_segmentation(tmp_path):
    path, sphere = _case(tmp_path, 15)
    mask = sitk.GetImageFromArray(sphere.astype(np.uint8))
    mask.CopyInformation(sitk.ReadImage(str(path)))
    sitk.WriteImage(mask, str(tmp_path / "sphere.nii.gz"))
    out = tmp_path / "cf"
    result = _cli("counterfactual", str(path), "--model", str(MODEL), "--fold", "0", "--mask",
                  str(tmp_path / "sphere.nii.gz"), "--out", str(out), "--progress", "none")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["p_orig"] > 0.8 and summary["delta_drop"] > 0.3


def test_cli_layer_method_refuses_in_one_line(tmp_path):
    path, _ = _case(tmp_path, 12)
    result = _cli("explain", str(path), "--model", str(MODEL), "--fold", "0", "--method", "gradcam",
                  "--out", str(tmp_path / "out"), "--progress", "none")
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "nnU-Net" in message and "rex" in message


def test_cli_folder_without_plans_exits_2_in_one_line(tmp_path):
    broken = tmp_path / MODEL.name
    shutil.copytree(MODEL, broken)
    (broken / "plans.json").unlink()
    path, _ = _case(tmp_path, 13)
    result = _cli("explain", str(path), "--model", str(broken), "--out", str(tmp_path / "out"), "--progress", "none")
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "plans.json" in message


def test_sanity_check_randomises_every_fold_and_keeps_the_region(tmp_path):
    """`voxcause sanity` on nnU-Net: both folds of the ensemble are randomised (the original untouched), the
    original region stays the target, and the occlusion map of the random ensemble loses its order."""
    from voxcause.evaluate.sanity import sanity_check
    from voxcause.models.randomize import randomized

    path, _ = _case(tmp_path, 14)
    model = load_model(MODEL, device="cpu")
    first = next(iter(model.fold_weights[0]))  # the input layer's weight: randomised at fraction 1.0
    before = [state[first].clone() for state in model.fold_weights]
    copy = randomized(model, 1.0, seed=0)
    assert len(copy.fold_weights) == len(model.fold_weights) == 2 and copy.network is not model.network
    for original, random, kept in zip(model.fold_weights, copy.fold_weights, before, strict=True):
        assert torch.equal(original[first], kept)
        assert not torch.equal(random[first], kept)
    result, report = sanity_check(path, model=model, method="occlusion", efficient=True)
    assert report["target"]["kind"] == "region" and report["maps"] == 2
    assert abs(report["steps"][0]["rank_correlation"]) < 0.7, report
