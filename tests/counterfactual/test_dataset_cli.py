"""Dataset mode (manifest -> tables + plot, one failing case recorded) and the command-line module."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from voxcause.cli.main import main
from voxcause.counterfactual import run_manifest
from voxcause.errors import InputError

from .conftest import phantom, write_volume


@pytest.fixture(scope="module")
def cohort(known_cause, tmp_path_factory) -> dict:
    """Five cases: two lesions, one healthy (decoy only), one mislabelled lesion, one with an empty mask."""
    folder = tmp_path_factory.mktemp("cohort")
    rows = []
    for seed, kind, label in [(0, "lesion", "lesion"), (1, "lesion", "lesion"), (2, "healthy", "healthy"),
                              (3, "lesion", "healthy"), (4, "lesion", "lesion")]:
        image, sphere, decoy = phantom(seed)
        if kind == "healthy":
            image[0][sphere] = 100.0
        write_volume(image[0], folder / f"case{seed}.nii.gz")
        mask = (sphere if kind == "lesion" else decoy).astype(np.uint8)
        if seed == 4:
            mask[:] = 0  # the failing case
        write_volume(mask, folder / f"mask{seed}.nii.gz")
        rows.append({"image": f"case{seed}.nii.gz", "mask": f"mask{seed}.nii.gz", "label": label,
                     "patient": f"P{seed // 2}"})
    with open(folder / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "mask", "label", "patient"])
        writer.writeheader()
        writer.writerows(rows)
    return {"folder": folder, "manifest": folder / "manifest.csv"}


def _table(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_manifest_tables_plot_and_failure(known_cause, cohort, tmp_path) -> None:
    out = tmp_path / "out"
    result = run_manifest(cohort["manifest"], out_dir=out, model=known_cause["classifier"])
    assert len(result.rows) == 5 and len(result.failures) == 1
    assert result.failures[0]["id"] == "case4" and "empty" in result.failures[0]["error"]
    cases = {row["id"]: row for row in _table(out / "cases.csv")}
    assert cases["case4"]["status"] == "error" and cases["case0"]["status"] == "ok"
    assert float(cases["case0"]["delta_drop"]) > 0.99 and cases["case0"]["correct"] == "True"
    assert cases["case3"]["correct"] == "False" and cases["case3"]["predicted"] == "lesion"
    assert abs(float(cases["case2"]["delta_drop"])) < 1e-3  # healthy: removing the decoy changes nothing
    per_class = {row["group"]: row for row in _table(out / "per_class.csv")}
    assert list(per_class) == ["healthy", "lesion"]  # the model's label order
    assert per_class["lesion"]["n"] == "2" and float(per_class["lesion"]["delta_drop_mean"]) > 0.99
    assert float(per_class["lesion"]["delta_drop_sd"]) < 1e-3
    correctness = {row["group"]: row for row in _table(out / "correctness.csv")}
    assert correctness["correct"]["n"] == "3" and correctness["misclassified"]["n"] == "1"
    summary = json.loads((out / "dataset_summary.json").read_text(encoding="utf-8"))
    assert summary["failed"] == 1 and summary["succeeded"] == 4
    assert (out / "distributions.png").stat().st_size > 10_000 and (out / "distributions.pdf").exists()
    assert (out / "cases" / "case0" / "overview.png").exists() and not (out / "cases" / "case4").exists()


def test_manifest_without_labels_or_masks_fails_before_running(known_cause, tmp_path) -> None:
    image = write_volume(phantom()[0][0], tmp_path / "case.nii.gz")
    (tmp_path / "m.csv").write_text(f"image,mask\n{image},{image}\n")
    with pytest.raises(InputError, match="no label .*'label' column"):
        run_manifest(tmp_path / "m.csv", out_dir=tmp_path / "o", model=known_cause["classifier"])
    (tmp_path / "n.csv").write_text(f"image,label\n{image},lesion\n")
    with pytest.raises(InputError, match="no mask"):
        run_manifest(tmp_path / "n.csv", out_dir=tmp_path / "o", model=known_cause["classifier"])
    assert not (tmp_path / "o").exists()


def test_cli_single_image_with_json_progress(known_cause, tmp_path, capsys) -> None:
    folder = known_cause["folder"]
    code = main(["counterfactual", str(folder / "image.nii.gz"), "--model", str(known_cause["classifier"]),
                 "--mask", str(folder / "sphere.nii.gz"), "--out", str(tmp_path / "cf"), "--progress", "json"])
    assert code == 0
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.err.splitlines() if line.strip()]
    assert events[0]["event"] == "progress" and events[-1] == {"event": "done", "out": str(tmp_path / "cf")}
    assert all(0.0 <= e["fraction"] <= 1.0 for e in events if e["event"] == "progress")
    summary = json.loads((tmp_path / "cf" / "summary.json").read_text(encoding="utf-8"))
    assert summary["class_orig"] == "lesion" and summary["class_remove"] == "healthy"
    code = main(["counterfactual", str(folder / "image.nii.gz"), "--model", str(known_cause["classifier"]),
                 "--mask", str(folder / "decoy.nii.gz"), "--out", str(tmp_path / "decoy"), "--progress", "none",
                 "--removal", "telea"])
    assert code == 0 and "ΔDrop +0.000" in capsys.readouterr().out


def test_cli_manifest_and_bad_input(known_cause, cohort, tmp_path, capsys) -> None:
    code = main(["counterfactual", "--manifest", str(cohort["manifest"]), "--model", str(known_cause["classifier"]),
                 "--out", str(tmp_path / "ds"), "--progress", "none", "--no-case-outputs"])
    assert code == 0
    captured = capsys.readouterr()
    assert "4/5 cases done (1 failed)" in captured.out and "case4" in captured.err
    assert (tmp_path / "ds" / "cases.csv").exists() and not (tmp_path / "ds" / "cases").exists()
    image, model = str(known_cause["folder"] / "image.nii.gz"), str(known_cause["classifier"])
    for argv, message in [
        ([image, "--model", model], "no region"),
        (["--model", model], "no image"),
        ([image, "--model", model, "--mask", image, "--mask-labels", "a"], "integers"),
        ([image, "--model", model, "--mask", str(tmp_path / "missing.nii.gz")], "mask not found"),
    ]:
        assert main(["counterfactual", *argv, "--out", str(tmp_path / "bad")]) == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]  # (after any progress lines)
        assert error.startswith("voxcause: error:") and message in error
    assert not (tmp_path / "bad").exists()
