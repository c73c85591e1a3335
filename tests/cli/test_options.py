"""The options every command shares are declared once: --progress, --device, the model flags, --threads;
and `voxcause methods` reports the explainers' own declared defaults."""

from __future__ import annotations

import argparse
import json

import pytest
import SimpleITK as sitk
import torch
from voxcause.cli.common import model_options
from voxcause.cli.main import build_parser, main
from voxcause.errors import InputError
from voxcause.explainers import available_methods, declared_options
from voxcause.models import resolve_device
from voxcause.testing import make_case, write_nifti


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_progress_is_one_flag_with_one_default_on_every_command():
    commands = _subparsers()
    progress = {name: _option(p, "--progress") for name, p in commands.items()}
    assert {name for name, action in progress.items() if action is None} == {"methods"}
    declared = {(a.default, tuple(a.choices), a.help) for a in progress.values() if a is not None}
    assert len(declared) == 1 and next(iter(declared))[:2] == ("bar", ("bar", "json", "none"))


def test_device_defaults_to_auto_everywhere_and_auto_resolves_to_what_is_there():
    devices = {name: _option(p, "--device") for name, p in _subparsers().items()}
    with_device = {name for name, action in devices.items() if action is not None}
    assert with_device == {"explain", "sanity", "counterfactual", "benchmark", "batch", "demo"}
    assert {devices[name].default for name in with_device} == {"auto"}
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("CPU") == "cpu"
    with pytest.raises(InputError, match="unknown device 'tpu' — use auto, cpu, cuda"):
        resolve_device("tpu")


@pytest.mark.parametrize("command", ["explain", "sanity", "counterfactual", "benchmark", "batch"])
def test_one_reader_for_the_model_flags_of_every_command(command):
    args = {
        "explain": ["explain", "a.nii.gz", "--model", "m.ts"],
        "sanity": ["sanity", "a.nii.gz", "--model", "m.ts"],
        "counterfactual": ["counterfactual", "a.nii.gz", "--model", "m.ts"],
        "benchmark": ["benchmark", "cases.csv", "--model", "m.ts"],
        "batch": ["batch", "cases.csv", "--model", "m.ts"],
    }[command]
    flags = ["--task", "segmentation", "--labels", "bg, lesion", "--spatial-size", "8,16,16", "--output", "1"]
    parsed = build_parser().parse_args(args + flags)
    options = model_options(parsed)
    expected = {"task": "segmentation", "labels": ["bg", "lesion"], "spatial_size": [8, 16, 16], "output": 1}
    if command == "counterfactual":
        expected["batch_size"] = 16  # its documented default: images per forward call
    assert options == expected
    assert model_options(build_parser().parse_args(args)) == (
        {"batch_size": 16} if command == "counterfactual" else {}
    )  # absent flags keep the card's values (and stay out of batch hashes)


def test_explain_threads_sets_torch_and_simpleitk(tmp_path):
    case = make_case("single", size=16)
    image = write_nifti(case.image[0], tmp_path / "image.nii.gz")
    model = tmp_path / "model.ts"
    torch.jit.script(case.model).save(str(model))
    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    try:
        argv = ["explain", str(image), "--model", str(model), "--threads", "2", "--iterations", "2",
                "--out", str(tmp_path / "out"), "--progress", "none"]
        assert main(argv) == 0
        assert torch.get_num_threads() == 2 and sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 2
        summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
        assert summary["device"] == resolve_device("auto")
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)


def test_methods_lists_the_declared_defaults(capsys):
    assert main(["methods", "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["default_method"] == "rex" and set(described["methods"]) == set(available_methods())
    for method, entry in described["methods"].items():
        declared = [o.describe() for o in declared_options(method) if not o.supplied]
        assert entry["options"] == json.loads(json.dumps(declared)), method
    rex = {o["name"]: o for o in described["methods"]["rex"]["options"]}
    assert rex["iterations"]["default"] == 10 and rex["occlusion"]["default"] == "auto"
    assert described["methods"]["gradcam"]["needs_network"] is True
    assert described["methods"]["occlusion"]["needs_network"] is False
    assert main(["methods"]) == 0
    text = capsys.readouterr().out
    assert "rex (default)" in text and "  iterations = 10 (1..500): random partitions to merge" in text


def test_a_method_that_cannot_load_is_reported_not_fatal(monkeypatch, capsys):
    import voxcause.explainers as explainers

    monkeypatch.setitem(explainers.METHODS, "ghost", "voxcause.no_such_module:Ghost")
    assert main(["methods", "--json"]) == 0
    ghost = json.loads(capsys.readouterr().out)["methods"]["ghost"]
    assert ghost == {"error": "ModuleNotFoundError: No module named 'voxcause.no_such_module'"}


def test_explain_prints_the_certificate_verdict_and_reason(tmp_path, capsys):
    case = make_case("single", size=24, seed=0)
    image = write_nifti(case.image[0], tmp_path / "image.nii.gz")
    model = tmp_path / "model.ts"
    torch.jit.script(case.model).save(str(model))
    assert main(["explain", str(image), "--model", str(model), "--out", str(tmp_path / "out"),
                 "--progress", "none"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    certificate = summary["certificate"]
    assert certificate["verdict"] == "pass"
    assert lines[-1] == f"certificate PASS: {certificate['reason']}"


def test_every_listed_option_is_reachable_from_explain(tmp_path):
    """Each option `voxcause methods` lists is a flag of `explain` generated from its declaration, or reached with
    --option METHOD.KEY=VALUE (batch_size: the flag --batch-size is the model's)."""
    explain = _subparsers()["explain"]
    for method in available_methods():
        for option in declared_options(method):
            if option.supplied:
                continue
            flag = _option(explain, "--" + option.name.replace("_", "-"))
            assert flag is not None, (method, option.name)
            assert flag.dest == f"method_{option.name}" or option.name == "batch_size", (method, option.name)
    case = make_case("single", size=16)
    image = write_nifti(case.image[0], tmp_path / "image.nii.gz")
    model = tmp_path / "model.ts"
    torch.jit.script(case.model).save(str(model))
    argv = ["explain", str(image), "--model", str(model), "--method", "occlusion", "--cell", "4,4,8",
            "--option", "occlusion.batch_size=3", "--baseline", "0.5", "--out", str(tmp_path / "out"),
            "--progress", "none"]
    assert main(argv) == 0
    params = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))["params"]
    assert params["cell"] == [4, 4, 8] and params["batch_size"] == 3 and params["baseline"] == 0.5


@pytest.mark.parametrize("flags,expected", [
    (["--iterations", "0"], "iterations=0 is outside 1..500"),
    (["--iterations", "ten"], "iterations='ten' is not a whole number in 1..500"),
    (["--method", "gradcam", "--occlusion", "min"], "has no option occlusion (it is an option of rex)"),
    (["--option", "rex.iterations=5", "--method", "occlusion"], "is for method 'rex', but --method is 'occlusion'"),
    (["--option", "rex.colour=red"], "method 'rex' has no option colour"),
])
def test_explain_refuses_bad_method_options_in_one_line(flags, expected, tmp_path, capsys):
    argv = ["explain", str(tmp_path / "missing.nii.gz"), "--model", str(tmp_path / "m.ts"), *flags,
            "--out", str(tmp_path / "out"), "--progress", "none"]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and expected in error[0], error
    assert not (tmp_path / "out").exists()
