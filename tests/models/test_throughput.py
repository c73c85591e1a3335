"""Speed options of `LoadedModel` keep the answers: bf16 autocast, torch.compile (or its fallback), sliding-window
inference of patch-trained segmenters, and the clear refusals (fp16 on the CPU, layer methods over windows)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage, stats
from voxcause import explain
from voxcause.cli.main import main
from voxcause.errors import InputError
from voxcause.models import load_model
from voxcause.models.card import SlidingWindow
from voxcause.testing import loaded, make_case, positive_share, volume_of, write_nifti

ITERATIONS = 8


def test_bf16_on_cpu_keeps_the_class_and_the_map():
    case = make_case("single", size=32)
    fp32 = explain(volume_of(case.image), model=loaded(case.model), seed=0, iterations=ITERATIONS)
    bf16 = explain(volume_of(case.image), model=loaded(case.model), seed=0, iterations=ITERATIONS, precision="bf16")
    assert bf16.stats["precision"] == "bf16" and fp32.stats["precision"] == "fp32"
    assert bf16.prediction["label"] == fp32.prediction["label"]
    assert abs(bf16.score - fp32.score) < 0.02
    rho = stats.spearmanr(bf16.map.ravel(), fp32.map.ravel())[0]
    assert rho > 0.9, rho
    cause = ndimage.binary_dilation(case.causes[0], iterations=2)
    assert cause.flat[int(np.argmax(bf16.map))] and positive_share(bf16.map, cause) > 0.6


def test_fp16_on_cpu_is_refused_in_one_line(tmp_path, capsys):
    case = make_case("single", size=24)
    image = write_nifti(case.image[0], tmp_path / "image.nii.gz")
    model = tmp_path / "model.ts"
    torch.jit.script(case.model).save(str(model))
    with pytest.raises(InputError, match="fp16 needs a CUDA GPU .* use --precision bf16"):
        load_model(model, precision="fp16")
    with pytest.raises(InputError, match="unknown precision"):
        load_model(model, precision="fp8")
    argv = ["explain", image, "--model", str(model), "--precision", "fp16", "--out", str(tmp_path / "out"),
            "--progress", "none"]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--precision fp16 needs a CUDA GPU" in error[0] and " — " in error[0]
    assert not (tmp_path / "out").exists()


def test_compile_failure_falls_back_to_eager_with_a_warning(monkeypatch):
    case = make_case("single", size=24)
    reference = explain(volume_of(case.image), model=loaded(case.model), seed=0, iterations=4)

    def broken_compile(module, **_kwargs):
        def run(_inputs):
            raise RuntimeError("inductor: no C++ compiler\nCalledProcessError: cc1plus not found")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    result = explain(volume_of(case.image), model=loaded(case.model), seed=0, iterations=4, compile=True)
    assert any("torch.compile failed" in w and "cc1plus" in w for w in result.stats["warnings"])
    assert result.stats["compiled"] is False
    np.testing.assert_array_equal(result.map, reference.map)
    assert result.stats["forward_passes"] == reference.stats["forward_passes"]


def test_compile_of_a_torchscript_model_is_skipped_with_a_warning(tmp_path):
    case = make_case("single", size=24)
    path = tmp_path / "model.ts"
    torch.jit.script(case.model).save(str(path))
    model = load_model(path, compile=True)
    assert model.compiled is None and "runs uncompiled" in model.warnings[0]


@pytest.mark.slow
def test_compile_gives_the_same_explanation():
    case = make_case("single", size=24)
    reference = explain(volume_of(case.image), model=loaded(case.model), seed=0, iterations=4)
    result = explain(volume_of(case.image), model=loaded(case.model), seed=0, iterations=4, compile=True)
    if result.stats["compiled"]:
        assert not any("torch.compile" in w for w in result.stats.get("warnings", []))
    else:  # no working compiler here: the fallback must say so
        assert any("torch.compile failed" in w for w in result.stats["warnings"])
    assert result.prediction["label"] == reference.prediction["label"]
    np.testing.assert_allclose(result.map, reference.map, atol=1e-4)


def test_pinned_staging_is_a_no_op_on_the_cpu():
    model = loaded(make_case("single", size=24).model)
    batch = torch.zeros(2, 1, 24, 24, 24)
    assert model._to_device(batch) is batch and model._staging is None


# ---- sliding-window inference -------------------------------------------------------------------------------
SIZE = 40
ROI = 16
GAIN, LEVEL = 20.0, 0.6


def bright_segmenter() -> torch.nn.Conv3d:
    """A fully convolutional segmenter: foreground logit = gain * (3x3x3 mean - level), background 0."""
    network = torch.nn.Conv3d(1, 2, 3, padding=1)
    with torch.no_grad():
        network.weight.zero_()
        network.weight[1].fill_(GAIN / 27.0)
        network.bias.copy_(torch.tensor([0.0, -GAIN * LEVEL]))
    return network.eval()


def segmenter_cards(folder: Path) -> tuple[Path, Path]:
    """The same network as a whole-image card and as a sliding-window card whose roi is smaller than the image."""
    torch.save(bright_segmenter().state_dict(), folder / "weights.pt")
    base = {
        "task": "segmentation",
        "labels": ["background", "spot"],
        "network": {"_target_": "torch.nn.Conv3d", "in_channels": 1, "out_channels": 2, "kernel_size": 3,
                    "padding": 1},
        "weights": "weights.pt",
        "activation": "softmax",
    }
    whole, windowed = folder / "whole.json", folder / "windowed.json"
    whole.write_text(json.dumps(base), encoding="utf-8")
    window = {"sliding_window": {"overlap": 0.5, "sw_batch_size": 3, "mode": "gaussian"}}
    windowed.write_text(json.dumps({**base, "spatial_size": [ROI] * 3, "inference": window}), encoding="utf-8")
    return whole, windowed


def test_sliding_window_matches_the_whole_image_for_a_convolutional_model(tmp_path):
    whole_card, windowed_card = segmenter_cards(tmp_path)
    whole, windowed = load_model(whole_card), load_model(windowed_card)
    assert windowed.sliding_window.roi_size == (ROI,) * 3 and windowed.card.spatial_size is None
    case = make_case("single", size=SIZE)
    volume = volume_of(case.image)
    inputs = windowed.prepare(volume)
    assert tuple(inputs.shape[2:]) == (SIZE,) * 3  # the image stays on its own grid
    with torch.no_grad():
        expected, got = whole.predict(inputs), windowed.predict(inputs)
    assert torch.equal(expected.argmax(1), got.argmax(1))
    # Identical except next to window borders, where the network's own zero padding sees the window's edge
    # instead of the neighbouring voxels (blended away by the overlap for all but a thin shell).
    difference = (got - expected).abs()
    assert float((difference < 1e-4).float().mean()) > 0.9 and float(difference.max()) < 0.1
    windows = len(range(0, SIZE - ROI + 1, ROI // 2)) + (1 if (SIZE - ROI) % (ROI // 2) else 0)
    assert windowed.forward_passes == 1 and windowed.window_passes == windows**3


def test_sliding_window_explanation_finds_the_known_cause(tmp_path):
    _, windowed_card = segmenter_cards(tmp_path)
    case = make_case("single", size=SIZE)
    cause = case.causes[0]
    result = explain(volume_of(case.image), model=windowed_card, region=cause, seed=0, iterations=ITERATIONS)
    assert result.stats["window_passes"] > result.stats["forward_passes"] > 0
    assert result.stats["sliding_window"]["roi_size"] == [ROI] * 3
    near = ndimage.binary_dilation(cause, iterations=4)  # ReX credits boxes: the ball's blocks, not its outline
    assert near.flat[int(np.argmax(result.map))] and positive_share(result.map, near) > 0.55
    assert positive_share(result.map, case.decoys[0]) < 0.02


def test_layer_methods_are_refused_over_windows():
    network = torch.nn.Sequential(bright_segmenter())
    model = loaded(network, task="segmentation", sliding_window=SlidingWindow(roi_size=(ROI,) * 3))
    case = make_case("single", size=SIZE)
    with pytest.raises(InputError, match="one window at a time"):
        explain(volume_of(case.image), model=model, region=case.causes[0], method="gradcam")


def test_bad_sliding_window_cards_name_the_fix(tmp_path):
    _, windowed_card = segmenter_cards(tmp_path)
    card = json.loads(windowed_card.read_text(encoding="utf-8"))
    for change, message in (
        ({"inference": {"sliding_window": {"overlap": 1.5}}}, "overlap 1.5"),
        ({"spatial_size": None, "inference": {"sliding_window": {}}}, "no roi_size"),
        ({"task": "classification"}, "needs a segmentation model"),
    ):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps({**card, **change}), encoding="utf-8")
        with pytest.raises(InputError, match=message):
            load_model(path)


def test_bundle_with_a_sliding_window_inferer_keeps_the_image_grid(tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    torch.save(bright_segmenter().state_dict(), bundle / "models" / "model.pt")
    config = {
        "network_def": {"_target_": "torch.nn.Conv3d", "in_channels": 1, "out_channels": 2, "kernel_size": 3,
                        "padding": 1},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [ROI] * 3, "sw_batch_size": 2, "overlap": 0.5},
    }
    (bundle / "configs" / "inference.json").write_text(json.dumps(config), encoding="utf-8")
    metadata = {"name": "spot", "network_data_format": {
        "inputs": {"image": {"num_channels": 1, "spatial_shape": [ROI] * 3}},
        "outputs": {"pred": {"shape": [2, ROI, ROI, ROI], "channel_def": {"0": "background", "1": "spot"}}}}}
    (bundle / "configs" / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    model = load_model(bundle)
    assert model.sliding_window.roi_size == (ROI,) * 3 and model.sliding_window.overlap == 0.5
    assert model.card.spatial_size is None
