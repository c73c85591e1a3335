"""The model-parameter randomisation check: maps of randomised models, target fixed, in every format; its numbers
agree with Quantus 0.6 (MPRT's Spearman similarity, EfficientMPRT's complexity rise) on a small model."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from voxcause import explain
from voxcause.cli.main import main
from voxcause.evaluate.sanity import compare, discrete_entropy, rank_correlation, sanity_check, ssim
from voxcause.models.randomize import layer_count, randomized, torch_layers
from voxcause.testing import write_nifti
from voxcause.testing.conv_cause import CauseClassifier, CauseSegmenter, make_conv_case
from voxcause.testing.wrapping import loaded, volume_of


@pytest.fixture(scope="module")
def case():
    inputs, cause, _ = make_conv_case(2, size=40, seed=0)
    return volume_of(inputs[0].numpy()), cause


def _formats(tmp_path, network: torch.nn.Module, example: torch.Tensor) -> dict:
    network = network.eval()
    torch.jit.trace(network, example).save(str(tmp_path / "m.ts"))
    torch.onnx.export(network, (example,), str(tmp_path / "m.onnx"), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "b"}, "y": {0: "b"}}, dynamo=False)
    return {"torchscript": tmp_path / "m.ts", "onnx": tmp_path / "m.onnx", "eager": loaded(network)}


@pytest.mark.parametrize("fmt", ["torchscript", "onnx", "eager"])
@pytest.mark.parametrize("kind", ["classifier", "segmenter"])
def test_randomised_models_lose_the_causal_map(fmt, kind, case, tmp_path):
    """rex on a known-cause network, two maps' worth of explanations, the target kept: |rho| <= 0.3 in every
    format. Measured: the classifier's random map ranks voxels differently (rho 0.23); the random segmenter keeps
    its decision on the region with the whole image occluded, so its causal map is empty and said to be."""
    volume, cause = case
    network = CauseClassifier(2) if kind == "classifier" else CauseSegmenter(2)
    model = _formats(tmp_path, network, torch.from_numpy(volume.array)[None])[fmt]
    result, report = sanity_check(volume, model=model, efficient=True, seed=0, iterations=4)
    assert report["maps"] == 2 and len(report["steps"]) == 1 and report["steps"][0]["randomized"] == 1.0
    assert report["target"]["label"] == result.target["label"] == "1"
    step = report["steps"][0]
    assert abs(step["rank_correlation"]) <= 0.3 and report["verdict"] == "pass", report
    assert step["empty"] is (kind == "segmenter") and result.details["sanity"] is report
    if kind == "segmenter":
        assert "occluded" in step["empty_because"] and report["reason"].startswith("the fully random model's map is")
        assert report["region_share_original"] > 0.9 and step["region_share"] is None
    assert report["layers"] == 3  # conv1, conv2, the head


def test_a_random_model_that_predicts_another_class_has_an_empty_map(case):
    """The fixed class is not the random model's decision: a causal method has nothing to explain (it refuses with
    ErrorCode.NOT_DECIDED), which the check reads as the empty map it is rather than stopping."""
    volume, _ = case
    _, report = sanity_check(volume, model=loaded(CauseClassifier(2)), efficient=True, seed=2, iterations=4)
    step = report["steps"][0]
    assert step["empty"] and step["empty_because"] == "the random model does not make the decision on this image"
    assert step["rank_correlation"] == 0.0 and report["verdict"] == "pass"


def test_a_random_segmenter_deciding_from_the_region_is_inconclusive(case):
    """With these seeds the random segmenter's decision does depend on the image: on the region's own voxels, as
    any convolutional network's does. Its map then matches the model's (rho 0.98; 0.74-0.89 with other search
    seeds, the model's own seed-to-seed rho 0.78), both with nearly all their mass in the region: the check
    cannot tell, and says so instead of failing the map."""
    volume, _ = case
    _, report = sanity_check(volume, model=loaded(CauseSegmenter(2)), efficient=True, seed=3, iterations=4)
    step = report["steps"][0]
    assert not step["empty"] and step["rank_correlation"] > 0.9
    assert report["region_share_original"] > 0.9 and step["region_share"] > 0.9
    assert report["verdict"] == "inconclusive" and "locality" in report["reason"]


def test_cascade_nests_and_leaves_the_model_alone(case):
    volume, _ = case
    network = CauseClassifier(2).eval()
    before = {k: v.clone() for k, v in network.state_dict().items()}
    model = loaded(network)
    top, all_layers = randomized(model, 0.34, seed=5), randomized(model, 1.0, seed=5)
    for key, value in network.state_dict().items():
        assert torch.equal(value, before[key]), key  # the original is never touched
    top_layers, full_layers = torch_layers(top.network), torch_layers(all_layers.network)
    assert torch.equal(top_layers[0].weight, network.features.conv1.weight)  # input side kept in the cascade
    assert not torch.equal(top_layers[-1].weight, network.fc.weight)
    assert torch.equal(top_layers[-1].weight, full_layers[-1].weight)  # the same random values at every step
    assert not torch.equal(full_layers[0].weight, network.features.conv1.weight)


def test_gradcam_cascade_reports_every_step(case):
    volume, _ = case
    _, report = sanity_check(volume, model=loaded(CauseClassifier(2)), method="gradcam", steps=3)
    assert [row["randomized"] for row in report["steps"]] == [0.333, 0.667, 1.0]
    assert [row["layers"] for row in report["steps"]] == [1, 2, 3]
    assert report["maps"] == 4 and report["verdict"] in ("pass", "weak", "fail")


def test_sanity_cli_writes_the_block_and_refuses_bad_steps(case, tmp_path, capsys):
    volume, _ = case
    network = CauseClassifier(2).eval()
    torch.jit.trace(network, torch.from_numpy(volume.array)[None]).save(str(tmp_path / "m.ts"))
    channels = [write_nifti(volume.array[c], tmp_path / f"c{c}.nii.gz", spacing=(1.0, 1.0)) for c in range(2)]
    out = tmp_path / "out"
    assert main(["sanity", *channels, "--model", str(tmp_path / "m.ts"), "--efficient", "--iterations", "3",
                 "--out", str(out), "--progress", "none"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sanity"]["verdict"] == json.loads((out / "sanity.json").read_text())["verdict"]
    assert "sanity PASS" in capsys.readouterr().out
    assert main(["sanity", *channels, "--model", str(tmp_path / "m.ts"), "--steps", "0", "--out",
                 str(tmp_path / "o2"), "--progress", "none"]) == 2
    assert "--steps 0" in capsys.readouterr().err and not (tmp_path / "o2").exists()


# ---- agreement with Quantus 0.6 -----------------------------------------------------------------------------
def _occlusion_map(network: torch.nn.Module, volume, target: int) -> np.ndarray:
    """voxcause's occlusion map of ``network`` for the fixed class ``target``: the explain_func handed to Quantus."""
    return explain(volume, model=loaded(network), method="occlusion", target=target).map


def test_numbers_agree_with_quantus(case):
    quantus = pytest.importorskip("quantus")
    from quantus.functions.complexity_func import discrete_entropy as q_entropy
    from quantus.functions.similarity_func import correlation_spearman

    volume, _ = case
    network = CauseClassifier(2).eval()
    x = volume.array[None]
    y = np.array([1])

    def explain_func(model, inputs, targets, **_):
        return np.stack([_occlusion_map(model, volume_of(sample), int(t))[None] for sample, t in zip(inputs, targets,
                                                                                                  strict=True)])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        efficient = quantus.EfficientMPRT(complexity_func_kwargs={"n_bins": 100}, layer_order="bottom_up", seed=42,
                                          disable_warnings=True)
        theirs = efficient(model=network, x_batch=x, y_batch=y, a_batch=None, explain_func=explain_func,
                           channel_first=True, device="cpu")
        # Quantus's own fully randomised model (its reset_parameters, its seed): our numbers on the same maps
        from quantus.helpers.model.pytorch_model import PyTorchModel

        *_, (_, random_model) = PyTorchModel(network, channel_first=True).get_random_layer_generator(
            order="bottom_up", seed=42)
    original = _occlusion_map(network, volume, 1)
    random_map = _occlusion_map(random_model, volume, 1)
    ours = (discrete_entropy(random_map) - discrete_entropy(original)) / discrete_entropy(original)
    assert ours == pytest.approx(float(theirs[0]), rel=1e-6)
    assert discrete_entropy(original) == pytest.approx(q_entropy(a=original, x=original, n_bins=100), rel=1e-9)
    # MPRT's similarity, Spearman: occlusion maps have no zero-in-both voxels here, so the support is all
    assert ((original != 0) | (random_map != 0)).all()
    assert rank_correlation(original, random_map) == pytest.approx(correlation_spearman(original.ravel(),
                                                                                        random_map.ravel()), abs=1e-9)
    numbers = compare(original, random_map)
    assert numbers["ssim"] == pytest.approx(ssim(original, random_map)) and -1 <= numbers["ssim"] <= 1


def test_flat_and_identical_maps():
    rng = np.random.default_rng(0)
    a = rng.random((12, 12))
    assert rank_correlation(a, a) == pytest.approx(1.0) and ssim(a, a) == pytest.approx(1.0)
    assert rank_correlation(a, np.zeros_like(a)) == 0.0  # a map with no ranking shares none


def test_benchmark_sanity_column(case):
    """``voxcause benchmark --sanity``: one |rho| per method and case, in the summary table."""
    from voxcause.evaluate.benchmark import Case, run_benchmark
    from voxcause.evaluate.report import summarise
    from voxcause.testing.conv_cause import class_target

    volume, _ = case
    inputs = torch.from_numpy(volume.array)[None]
    result = run_benchmark(loaded(CauseClassifier(2)), [Case("c0", inputs, class_target(1))], ["gradcam", "occlusion"],
                           baselines=("constant",), steps=4, random_repeats=1, perturbations=(),
                           faithfulness_runs=0, sanity=True)
    rows = {row["method"]: row for row in result.rows}
    assert 0 <= rows["gradcam"]["sanity_abs_rho"] <= 1 and 0 <= rows["occlusion"]["sanity_abs_rho"] <= 1
    assert "sanity_abs_rho" not in rows["random"]
    assert {row["method"]: row.get("sanity_abs_rho") for row in summarise(result.rows)}["occlusion"] == pytest.approx(
        rows["occlusion"]["sanity_abs_rho"])


def test_a_monai_bundle_folder_is_randomised_as_a_copy(tmp_path):
    """A bundle folder (configs/inference.json naming the network, models/model.pt) loaded by `load_model`: the
    randomised copy computes something else, while the loaded network and the bundle's files stay as they were."""
    from voxcause.models import load_model
    from voxcause.testing import KnownCauseNet, make_case

    network = KnownCauseNet("single", size=24).eval()
    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    torch.save(network.state_dict(), bundle / "models" / "model.pt")
    spec = {"_target_": "voxcause.testing.KnownCauseNet", "kind": "single", "size": 24}
    (bundle / "configs" / "inference.json").write_text(json.dumps({"network_def": spec}))
    (bundle / "configs" / "metadata.json").write_text(json.dumps({"name": "spot", "network_data_format": {
        "inputs": {"image": {"num_channels": 1, "spatial_shape": [24, 24, 24]}},
        "outputs": {"pred": {"shape": [2], "channel_def": {"0": "absent", "1": "present"}}}}}))
    files = {path: path.read_bytes() for path in bundle.rglob("*") if path.is_file()}
    model = load_model(bundle, device="cpu")
    before = {name: value.clone() for name, value in model.network.state_dict().items()}
    copy = randomized(model, 1.0, seed=0)
    assert copy.network is not model.network
    changed = [name for name, value in copy.network.state_dict().items() if not torch.equal(value, before[name])]
    assert changed and all(torch.equal(value, before[name]) for name, value in model.network.state_dict().items())
    inputs = torch.from_numpy(make_case("single", size=24).image)[None].float()
    with torch.no_grad():
        assert not torch.allclose(copy.forward_raw(inputs), model.forward_raw(inputs))
    _, report = sanity_check(volume_of(inputs[0].numpy()), model=model, method="occlusion", efficient=True)
    assert report["maps"] == 2 and report["layers"] == layer_count(model) > 0
    assert {path: path.read_bytes() for path in bundle.rglob("*") if path.is_file()} == files
