"""Bad input: one clear line naming the fix, exit code 2, nothing written."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from voxcause.cli.main import main
from voxcause.errors import ErrorCode, InputError
from voxcause.testing import make_case, write_nifti


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    single = make_case("single", size=24)
    segmenter = make_case("segmenter", size=24)
    paths = {
        "image": Path(write_nifti(single.image[0], folder / "image.nii.gz")),
        "model": folder / "model.ts",
        "seg_model": folder / "seg.ts",
    }
    torch.jit.script(single.model).save(str(paths["model"]))
    torch.jit.script(segmenter.model).save(str(paths["seg_model"]))
    nan = single.image[0].copy()
    nan[3, 3, 3] = np.nan
    paths["nan"] = Path(write_nifti(nan, folder / "nan.nrrd"))
    paths["nan_nifti"] = Path(write_nifti(nan, folder / "nan.nii.gz"))  # SimpleITK alone reads this NaN as 0
    paths["garbage"] = folder / "garbage.nii.gz"
    paths["garbage"].write_bytes(b"not an image at all")
    paths["bad_model"] = folder / "bad.ts"
    paths["bad_model"].write_bytes(b"nope")
    paths["flat"] = Path(write_nifti(single.image[0][12], folder / "flat.nii.gz", spacing=(1.0, 1.0)))
    paths["empty_mask"] = Path(write_nifti(np.zeros((24, 24, 24)), folder / "empty.nii.gz"))
    paths["full_mask"] = Path(write_nifti(np.ones((24, 24, 24)), folder / "full.nii.gz"))
    paths["card3d"] = folder / "card3d.json"
    paths["card3d"].write_text('{"model": "model.ts", "spatial_size": [24, 24, 24]}')
    paths["card4"] = folder / "card4.json"
    paths["card4"].write_text('{"model": "model.ts", "channels": ["T1", "T1c", "T2", "FLAIR"]}')
    paths["file"] = folder / "a_file"
    paths["file"].write_text("x")
    return paths


CASES = {
    "missing image": (["explain", "{folder}/nope.nii.gz", "--model", "{model}"], "image not found"),
    "unreadable image": (["explain", "{garbage}", "--model", "{model}"], "cannot read image"),
    "model does not load": (["explain", "{image}", "--model", "{bad_model}"], "does not load as TorchScript"),
    "missing model": (["explain", "{image}", "--model", "{folder}/none.ts"], "model not found"),
    "channel mismatch": (["explain", "{image}", "--model", "{card4}"], "expects 4 input channel"),
    "dimension mismatch": (["explain", "{flat}", "--model", "{card3d}"], "model takes 3D input"),
    "nan voxels nrrd": (["explain", "{nan}", "--model", "{model}"], "NaN/inf voxels"),
    "nan voxels nifti": (["explain", "{nan_nifti}", "--model", "{model}"], "1 NaN/inf voxels"),
    "unknown device": (["explain", "{image}", "--model", "{model}", "--device", "tpu"], "unknown device 'tpu'"),
    "zero threads": (["explain", "{image}", "--model", "{model}", "--threads", "0"], "--threads 0 must be"),
    "bad spatial size": (["explain", "{image}", "--model", "{model}", "--spatial-size", "a,b"], "not a list of"),
    "unknown label": (["explain", "{image}", "--model", "{model}", "--target", "glioma"], "unknown label"),
    "target out of range": (["explain", "{image}", "--model", "{model}", "--target", "7"], "out of range"),
    "empty region": (["explain", "{image}", "--model", "{seg_model}", "--region", "{empty_mask}"], "mask is empty"),
    "all-image region": (["explain", "{image}", "--model", "{seg_model}", "--region", "{full_mask}"], "whole image"),
    "unwritable output": (["explain", "{image}", "--model", "{model}", "--out", "{file}/out"], "cannot write to"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_one_line_exit_2_no_output(name, files, tmp_path, capsys):
    argv, expected = CASES[name]
    values = {key: str(value) for key, value in files.items()} | {"folder": str(files["image"].parent)}
    argv = [part.format(**values) for part in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    argv += ["--iterations", "2", "--progress", "none"]
    before = {p: p.stat().st_mtime_ns for p in files.values() if p.is_file()}
    assert main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("voxcause: error:") and expected in error[0], error
    assert " — " in error[0], "the message names the fix"
    assert not (tmp_path / "out").exists()
    assert before == {p: p.stat().st_mtime_ns for p in files.values() if p.is_file()}


def test_process_exit_code_and_json_error_event(files, tmp_path):
    command = [
        sys.executable,
        "-m",
        "voxcause",
        "explain",
        str(files["garbage"]),
        "--model",
        str(files["model"]),
        "--out",
        str(tmp_path / "o"),
        "--progress",
        "json",
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 2
    assert '"event": "error"' in done.stderr.strip().splitlines()[-1]


def test_json_error_event_carries_the_error_code(files, tmp_path, capsys):
    """Front ends map refusals by the event's ``code``, never by the message text: a layer method on a
    TorchScript model is ``needs_network`` (the Slicer panel and MONAI Label word it in their own terms)."""
    argv = ["explain", str(files["image"]), "--model", str(files["model"]), "--method", "gradcam",
            "--out", str(tmp_path / "o"), "--progress", "json"]
    assert main(argv) == 2
    event = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert event["event"] == "error" and event["code"] == "needs_network", event
    assert not (tmp_path / "o").exists()


def test_input_error_keeps_its_code_across_processes():
    error = pickle.loads(pickle.dumps(InputError("no network — use rex", code=ErrorCode.NEEDS_NETWORK)))
    assert isinstance(error, ValueError) and error.code is ErrorCode.NEEDS_NETWORK and str(error) == "no network — use rex"
    assert InputError("anything").code is ErrorCode.BAD_INPUT


#: An ASCII-only terminal, as on a CI runner without a UTF-8 locale: Python's UTF-8 mode and locale coercion off.
ASCII_ONLY = {"LANG": "C", "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "PYTHONIOENCODING": ""}


def _ascii_run(*args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ASCII_ONLY} | ASCII_ONLY
    env["PYTHONWARNINGS"] = "ignore"
    done = subprocess.run([sys.executable, "-m", "voxcause", *args], capture_output=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode("ascii"),
                                       done.stderr.decode("ascii"))  # nothing but ASCII may come out


def test_an_ascii_terminal_gets_escapes_not_a_crash(files, tmp_path):
    listed = _ascii_run("methods")  # the listing names each method's needs after an em dash
    assert listed.returncode == 0, listed.stderr
    assert "gradcam \\u2014 needs a network with named layers" in listed.stdout
    refused = _ascii_run("explain", str(files["nan"]), "--model", str(files["model"]), "--out", str(tmp_path / "o"),
                         "--progress", "none")
    error = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(error) == 1 and "NaN/inf voxels" in error[0], refused.stderr
    assert error[0].startswith("voxcause: error:") and " \\u2014 " in error[0]
    assert not (tmp_path / "o").exists()
