"""probability.nii.gz and uncertainty.nii.gz (`voxcause.probability`): known values, not just shapes.

- On the sample segmenter the written probability is the network's own softmax, computed here without any
  voxcause model code (the samples' training preprocessing, torch's softmax, the inverse resize), 1e-5.
- On the two-fold nnU-Net test model the uncertainty (std across folds) sits on the lesion border: its mean in a
  2-voxel band around the sphere is at least 3x its mean inside and outside, on cases it was not trained on.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
import torch.nn.functional as F
from scipy import ndimage
from voxcause import explain
from voxcause.io import read_image
from voxcause.probability import flip_axes, label_probability, voxel_probability
from voxcause.samples import make_patient, model_path, write_patient
from voxcause.samples.cards import load_network
from voxcause.samples.preprocess import prepare_for_model

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
from nnunet_spheres import make_case  # noqa: E402

NNUNET = (Path(__file__).parents[1] / "models" / "nnunet" / "Dataset500_Spheres"
          / "nnUNetTrainer_Tiny__nnUNetPlans_tiny__3d_fullres")


@pytest.fixture(scope="module")
def glioma_paths(tmp_path_factory) -> list[Path]:
    """A held-out glioma's four sequences, one file each."""
    written = write_patient(make_patient(100_003, "glioma"), tmp_path_factory.mktemp("glioma"))
    return [written[name] for name in ("T1", "T1c", "T2", "FLAIR")]


def test_probability_is_the_sample_segmenters_softmax_on_the_input_grid(glioma_paths, tmp_path):
    paths = glioma_paths
    result = explain([str(p) for p in paths], model=model_path("segmenter3d"), method="gradcam", seed=0)
    out = result.save(tmp_path / "out")

    network, card = load_network("segmenter3d")
    image = read_image([str(p) for p in paths])
    inputs = torch.from_numpy(prepare_for_model(image.array, card["spatial_size"], card["normalize"]))[None]
    with torch.no_grad():
        softmax = torch.softmax(network(inputs), dim=1)[:, 1:2]
    expected = F.interpolate(softmax, size=image.spatial_shape, mode="trilinear", align_corners=False)[0, 0].numpy()

    written = sitk.ReadImage(str(out / "probability.nii.gz"))
    reference = sitk.ReadImage(str(paths[0]))
    assert written.GetPixelID() == sitk.sitkFloat32
    assert written.GetSize() == reference.GetSize()
    assert np.allclose(written.GetSpacing(), reference.GetSpacing()) and np.allclose(written.GetOrigin(),
                                                                                    reference.GetOrigin())
    assert np.allclose(written.GetDirection(), reference.GetDirection())
    np.testing.assert_allclose(sitk.GetArrayFromImage(written), expected, atol=1e-5)
    assert expected.max() > 0.9 and expected.min() < 0.1  # a real tumour probability, not a flat map
    assert not (out / "uncertainty.nii.gz").exists()  # one model, no flips: nothing to disagree
    summary = (out / "summary.json").read_text()
    assert '"probability": "probability.nii.gz"' in summary


def _border_ratios(uncertainty: np.ndarray, lesion: np.ndarray) -> tuple[float, float]:
    band = ndimage.binary_dilation(lesion) & ~ndimage.binary_erosion(lesion)  # 2 voxels wide: 1 in, 1 out
    inside, outside = lesion & ~band, ~lesion & ~band
    assert inside.sum() > 20
    border = float(uncertainty[band].mean())
    return border / max(float(uncertainty[inside].mean()), 1e-12), border / max(float(uncertainty[outside].mean()),
                                                                               1e-12)


@pytest.mark.parametrize("seed", [3, 11])
def test_nnunet_fold_uncertainty_is_highest_on_the_lesion_border(seed, tmp_path):
    from voxcause.models import load_model

    image, label = make_case(seed, spacing=(2.2, 1.6, 1.6), shape=(24, 30, 30), origin=(10.0, -5.0, 3.0))
    sitk.WriteImage(image, str(tmp_path / "case.nii.gz"))
    lesion = sitk.GetArrayFromImage(label) > 0
    model = load_model(NNUNET, device="cpu")
    volume = read_image(tmp_path / "case.nii.gz")
    inputs = model.prepare(volume)
    probs = model.predict(inputs)
    maps = voxel_probability(model, inputs, probs, 1, lambda t: model.to_image_space(t, volume))
    assert (maps.members, maps.folds, maps.flips) == (2, 2, 1)
    assert len(model.fold_weights) == 2  # the ensemble is restored
    inside_ratio, outside_ratio = _border_ratios(maps.uncertainty, lesion)
    assert inside_ratio >= 3.0 and outside_ratio >= 3.0, (inside_ratio, outside_ratio)
    # the probability is the ensemble's, the one explained
    np.testing.assert_allclose(maps.probability, model.to_image_space(probs[0, 1], volume), atol=1e-6)
    # the spread is that of the folds' own predictions (each fold loaded alone), |p0 - p1| / 2 for two
    fold_probs = [load_model(NNUNET, device="cpu", fold=fold).predict(inputs)[0, 1] for fold in model.folds]
    spread = (fold_probs[0] - fold_probs[1]).abs() / 2
    np.testing.assert_allclose(maps.uncertainty, model.to_image_space(spread, volume).clip(min=0), atol=1e-5)


def test_flips_add_mirrored_scorings_and_keep_the_border(tmp_path):
    from voxcause.models import load_model

    image, label = make_case(7, spacing=(2.2, 1.6, 1.6), shape=(24, 30, 30))
    sitk.WriteImage(image, str(tmp_path / "case.nii.gz"))
    model = load_model(NNUNET, device="cpu")
    volume = read_image(tmp_path / "case.nii.gz")
    inputs = model.prepare(volume)
    maps = voxel_probability(model, inputs, model.predict(inputs), 1, lambda t: model.to_image_space(t, volume),
                             flips=True)
    assert len(flip_axes(model, 3)) == 7 and (maps.members, maps.flips) == (16, 8)
    inside_ratio, outside_ratio = _border_ratios(maps.uncertainty, sitk.GetArrayFromImage(label) > 0)
    assert inside_ratio >= 3.0 and outside_ratio >= 3.0, (inside_ratio, outside_ratio)


def test_label_probability_of_a_single_sigmoid_logit():
    probs = torch.tensor([[[0.2, 0.9]]])
    assert torch.allclose(label_probability(probs, 1), torch.tensor([[0.2, 0.9]]))
    assert torch.allclose(label_probability(probs, 0), torch.tensor([[0.8, 0.1]]))


def test_classifier_has_no_voxel_probability():
    assert voxel_probability(None, torch.zeros(1, 1, 4, 4, 4), torch.tensor([[0.3, 0.7]]), 1, lambda t: t) is None


def test_a_card_with_several_weights_is_an_ensemble_with_fold_uncertainty(tmp_path):
    """``weights: [a.pt, b.pt]``: the mean of the members' logits is the model explained; uncertainty.nii.gz is
    the spread of the members' own probabilities (each member scored alone), 0 where they agree."""
    import json

    from voxcause.models import load_model

    spec = {"_target_": "torch.nn.Conv3d", "in_channels": 1, "out_channels": 2, "kernel_size": 3, "padding": 1}
    states = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        network = torch.nn.Conv3d(1, 2, 3, padding=1)
        torch.save(network.state_dict(), tmp_path / f"member{seed}.pt")
        states.append(network.eval())
    (tmp_path / "card.json").write_text(json.dumps({
        "name": "two members", "task": "segmentation", "network": spec, "weights": ["member0.pt", "member1.pt"],
        "labels": ["background", "lesion"], "activation": "softmax"}))
    image = sitk.GetImageFromArray(np.random.default_rng(0).normal(size=(12, 14, 16)).astype(np.float32))
    image.SetSpacing((1.5, 1.2, 2.0))
    sitk.WriteImage(image, str(tmp_path / "case.nii.gz"))
    model = load_model(tmp_path / "card.json", device="cpu")
    volume = read_image(tmp_path / "case.nii.gz")
    inputs = model.prepare(volume)
    probs = model.predict(inputs)
    with torch.no_grad():
        logits = [network(inputs) for network in states]
    np.testing.assert_allclose(probs.numpy(), torch.softmax((logits[0] + logits[1]) / 2, 1).numpy(), atol=1e-6)
    maps = voxel_probability(model, inputs, probs, 1, lambda t: model.to_image_space(t, volume))
    assert (maps.members, maps.folds) == (2, 2)
    each = [torch.softmax(value, 1)[0, 1] for value in logits]
    np.testing.assert_allclose(maps.uncertainty, ((each[0] - each[1]).abs() / 2).numpy(), atol=1e-6)
    assert model.predict(inputs).allclose(probs)  # the whole ensemble again after the members
    result = explain(str(tmp_path / "case.nii.gz"), model=model, method="gradcam", seed=0)
    out = result.save(tmp_path / "out")
    assert (out / "uncertainty.nii.gz").exists() and result.details["model_probability"]["members"] == 2
