"""Bad input: one clear line naming the fix, exit code 2, nothing written."""

from __future__ import annotations

import gzip
import io
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
    paths["flat_volume"] = Path(write_nifti(single.image[0][:20, :20, :20], folder / "flat_volume.nii.gz"))
    paths["flat"] = Path(write_nifti(single.image[0][12], folder / "flat.nii.gz", spacing=(1.0, 1.0)))
    paths["empty_mask"] = Path(write_nifti(np.zeros((24, 24, 24)), folder / "empty.nii.gz"))
    paths["full_mask"] = Path(write_nifti(np.ones((24, 24, 24)), folder / "full.nii.gz"))
    paths["card3d"] = folder / "card3d.json"
    paths["card3d"].write_text('{"model": "model.ts", "spatial_size": [24, 24, 24]}')
    paths["card4"] = folder / "card4.json"
    paths["card4"].write_text('{"model": "model.ts", "channels": ["T1", "T1c", "T2", "FLAIR"]}')
    paths["file"] = folder / "a_file"
    paths["file"].write_text("x")
    paths.update(_hostile_cards(folder))
    paths["onnx_fixed_inside"] = _onnx_fixed_inside(folder)
    paths.update(_lying_inputs(folder, single.image[0]))
    return paths


def _onnx_fixed_inside(folder: Path) -> Path:
    """An ONNX model that declares free spatial axes but only runs on 24³ (a Linear after flattening): an image of
    another size fails inside onnxruntime, with its own exception class (not a RuntimeError)."""
    pytest.importorskip("onnxruntime")
    network = torch.nn.Sequential(torch.nn.Conv3d(1, 1, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(24**3, 2))
    path = folder / "fixed_inside.onnx"
    free = {0: "batch", 2: "z", 3: "y", 4: "x"}
    torch.onnx.export(network.eval(), (torch.zeros(1, 1, 24, 24, 24),), str(path), input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": free, "output": {0: "batch"}}, dynamo=False)
    return path


def _card(path: Path, network: dict, weights: str = "weights.pt") -> Path:
    path.write_text(json.dumps({"network": network, "weights": weights}))
    return path


def _hostile_cards(folder: Path) -> dict[str, Path]:
    """Cards and weights that would run a command (touching ``marker``) if anything in them were executed."""
    marker = folder / "marker"
    linear = {"_target_": "torch.nn.Linear", "in_features": 2, "out_features": 2}
    torch.save(torch.nn.Linear(2, 2).state_dict(), folder / "weights.pt")
    (folder / "not_weights.pt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    (folder / "evil.pt").write_bytes(_reduce_pickle(marker))
    return {
        "marker": marker,
        "card_system": _card(folder / "system.json", {"_target_": "os.system", "command": f"touch {marker}"}),
        "card_subprocess": _card(folder / "subprocess.json",
                                 {"_target_": "subprocess.run", "args": ["touch", str(marker)]}),
        "card_nested": _card(folder / "nested.json", {"_target_": "torch.nn.Sequential", "args": [
            linear, {"_target_": "subprocess.run", "args": ["touch", str(marker)]}]}),
        "card_nested_kwarg": _card(folder / "nested_kwarg.json", {**linear, "device": {
            "_target_": "builtins.exec", "source": f"open({str(marker)!r}, 'w')"}}),
        "card_function": _card(folder / "function.json", {"_target_": "torch.load", "f": str(folder / "evil.pt"),
                                                          "weights_only": False}),
        "card_escape": _card(folder / "escape.json", linear, "../../../../etc/passwd"),
        "card_not_weights": _card(folder / "not_weights.json", linear, "not_weights.pt"),
        "card_evil_pickle": _card(folder / "evil_pickle.json", linear, "evil.pt"),
    }


def _reduce_pickle(marker: Path) -> bytes:
    """A torch checkpoint whose unpickling would run ``os.system("touch MARKER")``."""
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    buffer = io.BytesIO()
    torch.save({"weight": Payload()}, buffer)
    return buffer.getvalue()


def _lying_inputs(folder: Path, array: np.ndarray) -> dict[str, Path]:
    """Files whose headers promise more than they hold, skewed axes, one voxel, two DICOM series, misnamed channels."""
    import SimpleITK as sitk
    from voxcause.io.dicom_series import write_dicom_series

    whole = Path(write_nifti(array, folder / "whole.nii.gz")).read_bytes()
    (folder / "truncated.nii.gz").write_bytes(whole[: len(whole) // 2])
    plain = gzip.decompress(whole)
    (folder / "short_payload.nii.gz").write_bytes(gzip.compress(plain[: len(plain) * 3 // 4]))
    (folder / "short.nii").write_bytes(plain[: len(plain) * 3 // 4])
    image = sitk.GetImageFromArray(array.astype(np.float32))
    sitk.WriteImage(image, str(folder / "whole.nrrd"), useCompression=False)
    nrrd = (folder / "whole.nrrd").read_bytes()
    (folder / "short.nrrd").write_bytes(nrrd[: len(nrrd) * 3 // 4])
    skewed = sitk.GetImageFromArray(array.astype(np.float32))
    skewed.SetDirection((1.0, 0.0, 0.0, 0.5, 1.0, 0.0, 0.0, 0.0, 1.0))
    sitk.WriteImage(skewed, str(folder / "oblique.nrrd"))
    two = folder / "two_series"
    two.mkdir()
    for number in (1, 2):
        series = folder / f"series{number}"
        write_dicom_series(sitk.Cast(image * number, sitk.sitkInt16), series, series_number=number,
                           study_uid="1.2.826.0.1.3680043.8.498.1", uid_seed=f"two-{number}")
        for file in series.iterdir():
            file.rename(two / f"s{number}_{file.name}")
    gap = folder / "missing_slice"
    write_dicom_series(sitk.Cast(image, sitk.sitkInt16), gap, uid_seed="gap")
    damaged = sorted(gap.glob("*.dcm"))[len(array) // 2]
    damaged.write_bytes(damaged.read_bytes()[:-200])  # GDCM drops the truncated slice from the series
    channels = {}
    for name in ("FLAIR", "T1", "T1c", "T2"):
        channels[f"channel_{name}"] = Path(write_nifti(array, folder / f"case_{name}.nii.gz"))
    return {
        "truncated": folder / "truncated.nii.gz",
        "short_payload": folder / "short_payload.nii.gz",
        "short_nii": folder / "short.nii",
        "short_nrrd": folder / "short.nrrd",
        "oblique": folder / "oblique.nrrd",
        "one_voxel": Path(write_nifti(np.ones((1, 1, 1)), folder / "one_voxel.nii.gz")),
        "two_series": two,
        "missing_slice": gap,
        **channels,
    }


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
    # a card is data: nothing it names runs (the marker file stays absent)
    "card runs os.system": (["explain", "{image}", "--model", "{card_system}"], "'os.system', which is not a network"),
    "card runs subprocess.run": (["explain", "{image}", "--model", "{card_subprocess}"], "'subprocess.run'"),
    "card nests subprocess.run": (["explain", "{image}", "--model", "{card_nested}"], "'subprocess.run'"),
    "card nests builtins.exec": (["explain", "{image}", "--model", "{card_nested_kwarg}"], "'builtins.exec'"),
    "card calls a torch function": (["explain", "{image}", "--model", "{card_function}"], "not an nn.Module class"),
    "card path escapes": (["explain", "{image}", "--model", "{card_escape}"], "leaves the card's folder"),
    "weights not a checkpoint": (["explain", "{image}", "--model", "{card_not_weights}"], "not a torch checkpoint"),
    "weights run code": (["explain", "{image}", "--model", "{card_evil_pickle}"], "hold posix.system"),
    "untrusted module name": (["explain", "{image}", "--model", "{card_system}", "--trust-module", "os;rm"],
                              "is not a package name"),
    "onnxruntime shape error": (["explain", "{flat_volume}", "--model", "{onnx_fixed_inside}"], "model failed on NCDHW input of shape (1, 1, 20, 20, 20)"),
    # bounded memory
    "peak above --max-memory": (["explain", "{image}", "--model", "{model}", "--max-memory", "1M"],
                                "is --max-memory — crop the image"),
    "max-memory not a size": (["explain", "{image}", "--model", "{model}", "--max-memory", "lots"], "is not a size"),
    # inputs that cannot lie
    "truncated gzip": (["explain", "{truncated}", "--model", "{model}"], "ends before its end marker"),
    "short nifti in valid gzip": (["explain", "{short_payload}", "--model", "{model}"], "its header promises"),
    "short plain nifti": (["explain", "{short_nii}", "--model", "{model}"], "its header promises"),
    "short nrrd": (["explain", "{short_nrrd}", "--model", "{model}"], "cannot read image"),
    "skewed axes": (["explain", "{oblique}", "--model", "{model}"], "skewed axes"),
    "one voxel": (["explain", "{one_voxel}", "--model", "{model}"], "1x1x1 voxels, too few"),
    "two dicom series": (["explain", "{two_series}", "--model", "{model}"], "holds 2 DICOM series"),
    "unknown dicom series": (["explain", "{two_series}", "--model", "{model}", "--series", "1.2.3"],
                             "DICOM series 1.2.3 is not in"),
    "dicom series with a damaged slice": (["explain", "{missing_slice}", "--model", "{model}"],
                                         "has unevenly spaced slices"),
    "channels in glob order": (["explain", "{channel_FLAIR}", "{channel_T1}", "{channel_T1c}", "{channel_T2}",
                                "--model", "{card4}"], "case_FLAIR.nii.gz is passed as channel 1 (T1) but its name says FLAIR — the model expects the files in the order T1, T1c, T2, FLAIR"),
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
    listing = sorted(path.name for path in files["image"].parent.iterdir())
    assert main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("voxcause: error:") and expected in error[0], error
    assert " — " in error[0], "the message names the fix"
    assert not (tmp_path / "out").exists()
    assert before == {p: p.stat().st_mtime_ns for p in files.values() if p.is_file()}
    assert not files["marker"].exists(), "nothing the input names may run"
    assert listing == sorted(path.name for path in files["image"].parent.iterdir()), "nothing written beside inputs"


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


def test_series_picks_one_of_several_and_the_summary_records_it(files, tmp_path):
    import SimpleITK as sitk

    uids = sorted(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(files["two_series"])))
    assert len(uids) == 2
    out = tmp_path / "out"
    argv = ["explain", str(files["two_series"]), "--model", str(files["model"]), "--series", uids[1],
            "--out", str(out), "--iterations", "2", "--progress", "none"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input_series"] == uids[1]


def test_channel_order_checked_goes_past_the_name_check(files, tmp_path, capsys):
    argv = ["explain", *(str(files[f"channel_{name}"]) for name in ("FLAIR", "T1", "T1c", "T2")),
            "--model", str(files["card4"]), "--channel-order-checked", "--out", str(tmp_path / "out"),
            "--iterations", "2", "--progress", "none"]
    main(argv)  # the 1-channel test model then refuses 4 channels: what matters is which check speaks
    assert "its name says" not in capsys.readouterr().err


def test_an_oblique_image_gets_every_output_in_its_geometry(files, tmp_path):
    """A rotated (orthonormal, oblique) NRRD is kept: the map, the segmentation and the input overlay exactly."""
    import SimpleITK as sitk

    source = sitk.ReadImage(str(files["image"]))
    angle = np.deg2rad(30.0)
    source.SetDirection((np.cos(angle), -np.sin(angle), 0.0, np.sin(angle), np.cos(angle), 0.0, 0.0, 0.0, 1.0))
    source.SetOrigin((12.5, -3.0, 40.0))
    oblique = tmp_path / "oblique_rotated.nrrd"
    sitk.WriteImage(source, str(oblique))
    out = tmp_path / "out"
    assert main(["explain", str(oblique), "--model", str(files["model"]), "--out", str(out), "--iterations", "2",
                 "--progress", "none"]) == 0
    for name in ("map.nii.gz", "explanation.seg.nrrd"):
        written = sitk.ReadImage(str(out / name))
        for attribute in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection"):
            assert np.allclose(getattr(written, attribute)(), getattr(source, attribute)(), atol=1e-5), (name, attribute)


def test_an_output_name_taken_by_the_user_is_exit_2_and_kept(files, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "overview.png").mkdir(parents=True)
    (out / "overview.png" / "mine.txt").write_text("the user's")
    (out / "summary.json").write_text("the user's summary")
    code = main(["explain", str(files["image"]), "--model", str(files["model"]), "--out", str(out),
                 "--iterations", "2", "--progress", "none"])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and "voxcause did not write it" in error[0], error
    assert (out / "overview.png" / "mine.txt").read_text() == "the user's"
    assert (out / "summary.json").read_text() == "the user's summary"
    assert sorted(p.name for p in out.iterdir()) == ["overview.png", "summary.json"], "nothing else moved in"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no staging left"
