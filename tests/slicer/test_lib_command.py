"""Command building: the panel's choices become exactly the documented `voxcause` arguments."""

import sys
from pathlib import Path

import pytest
from VoxCauseLib.command import LAUNCHER, ExplainRequest, RequestError, build_command
from VoxCauseLib.options import Device, Method, Occlusion


@pytest.fixture()
def model(tmp_path: Path) -> str:
    path = tmp_path / "card.json"
    path.write_text("{}")
    return str(path)


def test_explain_command_has_every_option_in_contract_order(model, tmp_path):
    request = ExplainRequest(
        images=(Path("t1.nrrd"), Path("t1c.nrrd")),
        model=model,
        out_dir=tmp_path / "out",
        method=Method.REX,
        target="glioma",
        region=Path("region.nrrd"),
        device=Device.CUDA,
        seed=7,
        iterations=12,
        occlusion=Occlusion.BLUR,
    )
    command = build_command(request, launcher=["voxcause"])
    assert command == [
        "voxcause",
        "explain",
        "t1.nrrd",
        "t1c.nrrd",
        "--model",
        model,
        "--method",
        "rex",
        "--target",
        "glioma",
        "--region",
        "region.nrrd",
        "--device",
        "cuda",
        "--seed",
        "7",
        "--iterations",
        "12",
        "--occlusion",
        "blur",
        "--out",
        str(tmp_path / "out"),
        "--progress",
        "json",
    ]


def test_defaults_run_the_predicted_class_on_cpu_with_the_core_defaults(model, tmp_path):
    command = build_command(ExplainRequest(images=(Path("a.nrrd"),), model=model, out_dir=tmp_path))
    assert command[:3] == [sys.executable, "-c", LAUNCHER]
    args = command[3:]
    assert args == [
        "explain",
        "a.nrrd",
        "--model",
        model,
        "--method",
        "rex",
        "--device",
        "cpu",
        "--seed",
        "0",
        "--out",
        str(tmp_path),
        "--progress",
        "json",
    ]
    assert "--target" not in args and "--iterations" not in args and "--occlusion" not in args


@pytest.mark.parametrize("method", [m for m in Method if not m.is_counterfactual])
def test_each_method_maps_to_its_cli_name_and_gets_only_the_options_it_declares(method, model, tmp_path):
    """Iterations and occlusion are rex's options: Grad-CAM with "Image minimum" chosen runs (issue 22)."""
    request = ExplainRequest(images=(Path("a.nrrd"),), model=model, out_dir=tmp_path, method=method, iterations=5,
                             occlusion=Occlusion.MIN)
    args = build_command(request, launcher=[])
    assert args[args.index("--method") + 1] == method.value
    assert ("--iterations" in args) == ("--occlusion" in args) == (method is Method.REX)


def test_counterfactual_uses_its_own_command_and_the_mask(model, tmp_path):
    request = ExplainRequest(
        images=(Path("a.nrrd"),),
        model=model,
        out_dir=tmp_path,
        method=Method.COUNTERFACTUAL,
        region=Path("mask.nrrd"),
        target="2",
    )
    args = build_command(request, launcher=[])
    assert args == [
        "counterfactual",
        "a.nrrd",
        "--model",
        model,
        "--mask",
        "mask.nrrd",
        "--target",
        "2",
        "--device",
        "cpu",
        "--seed",
        "0",
        "--out",
        str(tmp_path),
        "--progress",
        "json",
    ]


@pytest.mark.parametrize(
    ("occlusion", "sent"),
    [(None, None), (Occlusion.DEFAULT, None), (Occlusion.AUTO, "auto"), (Occlusion.CONSTANT, "constant")],
)
def test_the_core_default_sends_no_flag_and_a_choice_sends_its_value(occlusion, sent, model, tmp_path):
    request = ExplainRequest(images=(Path("a.nrrd"),), model=model, out_dir=tmp_path, occlusion=occlusion)
    args = build_command(request, launcher=[])
    assert (args[args.index("--occlusion") + 1] if "--occlusion" in args else None) == sent
    assert request.occlusion is (None if occlusion is Occlusion.DEFAULT else occlusion)  # one spelling


def test_the_panel_request_becomes_the_command_request_by_export(model, tmp_path):
    node, segmentation = object(), object()
    panel = ExplainRequest(
        images=[node], model=model, region=(segmentation, "seg1"), seed=3, iterations=5, report=True
    )
    assert panel.images == (node,) and panel.out_dir is None
    with pytest.raises(RequestError, match="No output folder"):
        build_command(panel, launcher=[])
    exported = panel.exported(images=[Path("input0.nrrd")], region=Path("region.nrrd"), out_dir=tmp_path)
    assert (exported.seed, exported.iterations, exported.report) == (3, 5, True)  # the same choices
    args = build_command(exported, launcher=[])
    assert args[:2] == ["explain", "input0.nrrd"] and args[args.index("--region") + 1] == "region.nrrd"
    assert args[args.index("--out") + 1] == str(tmp_path)


def test_occlusion_can_be_a_baseline_image(model, tmp_path):
    request = ExplainRequest(images=(Path("a.nrrd"),), model=model, out_dir=tmp_path, occlusion=Path("base.nii"))
    args = build_command(request, launcher=[])
    assert args[args.index("--occlusion") + 1] == "base.nii"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"images": ()}, "No input volume selected"),
        ({"images": (None,)}, "No input volume selected"),
        ({"images": (Path("a.nrrd"), None)}, "An input channel is empty"),
        ({"threshold": 1.0}, "Threshold must be in"),
        ({"opacity": -0.1}, "opacity in"),
        ({"model": ""}, "No model selected"),
        ({"model": "/no/such/model.ts"}, "Model not found"),
        ({"method": Method.COUNTERFACTUAL}, "needs a region"),
        ({"iterations": 0}, "Iterations must be between 1"),
        ({"iterations": 10_000}, "Iterations must be between 1"),
        ({"seed": -1}, "Seed must be 0 or more"),
        ({"target": "  "}, "Target is blank"),
    ],
)
def test_bad_requests_name_the_problem_and_the_fix(changes, words, model, tmp_path):
    values = {"images": (Path("a.nrrd"),), "model": model, "out_dir": tmp_path, **changes}
    with pytest.raises(RequestError, match=words) as info:
        build_command(ExplainRequest(**values))
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_request_is_keyword_only_and_frozen(model, tmp_path):
    with pytest.raises(TypeError):
        ExplainRequest((Path("a.nrrd"),), model, tmp_path)  # type: ignore[misc]
    request = ExplainRequest(images=(Path("a.nrrd"),), model=model, out_dir=tmp_path)
    with pytest.raises(AttributeError):
        request.seed = 3  # type: ignore[misc]


def test_enum_labels_are_unique_and_readable():
    for enum in (Method, Occlusion, Device):
        labels = [m.label() for m in enum]
        assert len(set(labels)) == len(labels)
        assert all(label[0].isupper() for label in labels)
    assert {m.value for m in Method} == {
        "rex",
        "gradcam",
        "gradcampp",
        "scorecam",
        "occlusion",
        "dea",
        "counterfactual",
    }


def test_report_command(tmp_path):
    from VoxCauseLib.command import build_report_command

    assert build_report_command(tmp_path, launcher=["voxcause"]) == [
        "voxcause",
        "report",
        str(tmp_path),
        "--progress",
        "json",
    ]
    assert build_report_command(tmp_path)[:3] == [sys.executable, "-c", LAUNCHER]
