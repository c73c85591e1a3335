"""The benchmark runner, its report files and the ``voxcause benchmark`` command on known-cause models.

The models are the shared hand-set known-cause networks (voxcause.testing.conv_cause); the targets are the
real `voxcause.targets` classes, with the pass rules the CLI uses.
"""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from voxcause.errors import InputError
from voxcause.evaluate import Case, run_benchmark, write_report
from voxcause.evaluate.benchmark import _shifted_target
from voxcause.models import Model, as_model
from voxcause.targets import ClassTarget, RegionTarget
from voxcause.testing import CauseClassifier, CauseSegmenter, make_conv_case
from voxcause.testing.files import png_size

FAST = {"steps": 5, "random_repeats": 2, "faithfulness_runs": 8}
BALL = ClassTarget(1, "ball")  # class 1 of the two-class known-cause classifier: the ball is present


def region_target(model: Model, x: torch.Tensor, region: torch.Tensor) -> RegionTarget:
    """Class 1 inside ``region``, passing while it keeps half its score on ``x`` (as `resolve_target` sets it)."""
    target = RegionTarget(1, "ball", region)
    with torch.no_grad():
        target.reference_score = float(target.score(model.predict(x))[0])
    return target


def test_classifier_benchmark_rows_and_report(tmp_path):
    x, cause, _ = make_conv_case(2)
    model = as_model(CauseClassifier(2))
    cases = [Case("ball", x, BALL, torch.from_numpy(cause))]
    result = run_benchmark(
        model, cases, ["gradcam", "occlusion"], options={"occlusion": {"cell": 10}},
        baselines=("constant", "blur"), perturbations=("noise", "shift1"), **FAST,
    )
    rows = {r["method"]: r for r in result.rows}
    assert set(rows) == {"random", "gradcam", "occlusion"}
    grad = rows["gradcam"]
    assert grad["pointing_game"] == 1.0 and grad["rank_accuracy"] > 0.9 and grad["leakage"] == 0.0
    assert grad["del_gain_constant"] > 0.15 and grad["ins_gain_constant"] > 0.3  # measured 0.20 and 0.38
    assert grad["del_auc_constant"] < rows["random"]["del_auc_constant"]
    assert grad["faithfulness_corr"] > 0.5
    assert grad["rob_shift1_spearman"] > 0.9 and grad["rob_noise_iou"] > 0.5
    assert (grad["forward_passes"], grad["backward_passes"]) == (2, 1)
    assert rows["occlusion"]["forward_passes"] == 1 + 16 and rows["occlusion"]["backward_passes"] == 0
    assert grad["layer"] == "features"  # the automatic CAM layer: the block ending in conv2 + ReLU
    paths = write_report(result, tmp_path)
    assert set(paths) >= {"results", "summary_csv", "summary_md", "verdict", "settings", "curves_constant",
                          "curves_blur"}
    settings = json.loads(paths["settings"].read_text(encoding="utf-8"))
    assert settings["methods"] == ["gradcam", "occlusion"] and settings["baselines"] == ["constant", "blur"]
    with open(paths["summary_csv"]) as handle:
        assert {row["method"] for row in csv.DictReader(handle)} == {"random", "gradcam", "occlusion"}
    for baseline in ("constant", "blur"):
        width, height = png_size(paths[f"curves_{baseline}"])
        assert width > 300 and height > 200, baseline
    table = paths["summary_md"].read_text(encoding="utf-8")
    assert table.startswith("| method |") and "| gradcam |" in table and "| random |" in table
    assert "Which method wins" in paths["verdict"].read_text(encoding="utf-8")
    with open(paths["results"]) as handle:
        assert len(list(csv.DictReader(handle))) == 3


def test_segmenter_benchmark_moves_the_region_with_a_shift():
    x, cause, _ = make_conv_case(2)
    net = CauseSegmenter(2)
    model = as_model(net)
    with torch.no_grad():
        region = net(x).argmax(1)[0].bool()
    target = region_target(model, x, region)
    assert target.reference_score > 0.9  # the predicted ball: confidently foreground
    result = run_benchmark(
        model, [Case("seg", x, target)], ["gradcampp", "dea"],
        options={"dea": {"cell": 10, "n_noise": 1}}, baselines=("constant",), perturbations=("shift2",), **FAST,
    )
    rows = {r["method"]: r for r in result.rows}
    assert rows["gradcampp"]["mass_inside"] > 0.5  # reference = the target region when no mask is given
    assert rows["gradcampp"]["rob_shift2_spearman"] > 0.9
    assert rows["dea"]["backward_passes"] == 2


def test_shifted_target_moves_a_region_and_keeps_a_class():
    region = torch.zeros(4, 4, dtype=torch.bool)
    region[0, 0] = True
    target = RegionTarget(1, "fg", region, reference_score=0.8)
    moved = _shifted_target(target, 1)
    assert moved.region[1, 1] and not moved.region[0, 0] and target.region[0, 0]
    assert (moved.index, moved.label, moved.reference_score, moved.pass_fraction) == (1, "fg", 0.8, 0.5)
    assert _shifted_target(BALL, 1) is BALL and _shifted_target(target, 0) is target


def test_benchmark_refuses_bad_requests():
    x, _, _ = make_conv_case(2)
    model = as_model(CauseClassifier(2))
    with pytest.raises(InputError, match="unknown method 'magic'"):
        run_benchmark(model, [Case("a", x, BALL)], ["magic"])
    with pytest.raises(InputError, match="at least one case"):
        run_benchmark(model, [], ["gradcam"])
    with pytest.raises(InputError, match="unknown baseline"):
        run_benchmark(model, [Case("a", x, BALL)], ["gradcam"], baselines=("fog",))


def _write_case(folder, nd=3):
    x, cause, _ = make_conv_case(nd)
    files = []
    for c in range(2):
        path = folder / f"channel{c}.nii.gz"
        sitk.WriteImage(sitk.GetImageFromArray(x[0, c].numpy()), str(path))
        files.append(path.name)
    sitk.WriteImage(sitk.GetImageFromArray(cause.astype(np.uint8)), str(folder / "cause.nii.gz"))
    return files


def test_cli_benchmark_on_a_torchscript_model(tmp_path, capsys):
    from voxcause.cli import benchmark as command

    files = _write_case(tmp_path)
    torch.jit.script(CauseClassifier(3)).save(str(tmp_path / "model.pt"))
    (tmp_path / "cases.csv").write_text(f"id,image,mask\nball,{';'.join(files)},cause.nii.gz\n")
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    argv = ["benchmark", str(tmp_path / "cases.csv"), "--model", str(tmp_path / "model.pt"),
            "--task", "classification", "--labels", "none,ball", "--methods", "occlusion",
            "--option", "occlusion.cell=4", "--baselines", "constant", "--steps", "4", "--perturbations", "none",
            "--faithfulness-runs", "0", "--out", str(tmp_path / "out"), "--progress", "none"]
    args = parser.parse_args(argv)
    assert args.run(args) == 0
    printed = capsys.readouterr().out
    assert "| occlusion |" in printed and "| random |" in printed
    summary = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("| method |") and "| occlusion |" in summary and "| random |" in summary
    width, height = png_size(tmp_path / "out" / "curves_constant.png")
    assert width > 300 and height > 200
    settings = json.loads((tmp_path / "out" / "benchmark.json").read_text(encoding="utf-8"))
    assert settings["methods"] == ["occlusion"] and settings["steps"] == 4
    assert settings["device"] == ("cuda" if torch.cuda.is_available() else "cpu")  # --device auto, resolved
    # a gradient method on TorchScript says what to use instead
    args = parser.parse_args([*argv[:8], "--methods", "gradcam", *argv[10:]])
    with pytest.raises(InputError, match=r"rex.*occlusion"):
        args.run(args)


def test_cli_option_parsing():
    from voxcause.cli.common import parse_method_options as parse_options

    assert parse_options(["occlusion.cell=8", "dea.noise=0.1", "scorecam.baseline=blur"]) == {
        "occlusion": {"cell": 8}, "dea": {"noise": 0.1}, "scorecam": {"baseline": "blur"}}
    with pytest.raises(InputError, match="METHOD.KEY=VALUE"):
        parse_options(["cell=8"])
