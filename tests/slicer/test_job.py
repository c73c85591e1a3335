"""One run from the panel's point of view, against real MRML and a stand-in `voxcause` process."""

import sys
import time
from pathlib import Path

import pytest
from slicer_helpers import FAKE_CLI, write_model
from VoxCauseLib import mrml as vm
from VoxCauseLib.command import ExplainRequest
from VoxCauseLib.job import ExplainJob, Finished
from VoxCauseLib.options import Method
from VoxCauseLib.progress import Log, Progress
from VoxCauseLib.state import Outcome, StateChange

pytestmark = pytest.mark.slicer
LAUNCHER = [sys.executable, str(FAKE_CLI)]


@pytest.fixture()
def volume(scene, image_path):
    return vm.load_volume(scene, image_path, name="case")


def _job(scene, volumes, model, events, **choices):
    request = ExplainRequest(images=tuple(volumes), model=str(model), **choices)
    return ExplainJob(scene, request, launcher=LAUNCHER, on_event=events.append)


def test_a_run_streams_progress_and_shows_the_results(scene, volume, tmp_path):
    events = []
    job = _job(scene, [volume], write_model(tmp_path, "ok"), events, iterations=3, threshold=0.25)
    assert job.start()
    assert job.command[:2] == LAUNCHER and "--progress" in job.command
    result = job.wait(timeout=60)
    assert result.outcome is Outcome.SUCCEEDED, result.message
    assert [e.stage for e in events if isinstance(e, Progress)] == [
        "loading model",
        "causal search",
        "sufficient explanation",
        "writing",
    ]
    assert Log("a plain log line") in events
    changes = [(e.old.value, e.new.value) for e in events if isinstance(e, StateChange)]
    assert changes == [("idle", "running"), ("running", "idle")]
    assert isinstance(events[-1], Finished) and events[-1] is result
    assert result.nodes.map.GetName() == "case responsibility map"
    assert result.nodes.map.GetDisplayNode().GetLowerThreshold() == pytest.approx(0.25)
    assert "Target: lesion (class 1)" in result.text and "123 forward passes" in result.text
    assert (result.out_dir / "voxcause-heat.ctbl").is_file()


def test_no_volume_is_rejected_before_any_process(scene, tmp_path):
    events = []
    before = vm.node_ids(scene)
    job = _job(scene, [None], write_model(tmp_path, "ok"), events)
    assert job.start() is False
    assert job.result.outcome is Outcome.BAD_INPUT
    assert job.result.message.startswith("No input volume selected")
    assert job._runner is None and vm.node_ids(scene) == before
    assert isinstance(events[-1], Finished)


@pytest.mark.parametrize(
    ("model_kind", "words"),
    [("missing", "Model not found"), ("empty-channel", "input channel is empty"), ("no-region", "needs a region")],
)
def test_other_bad_choices_are_rejected(scene, volume, tmp_path, model_kind, words):
    model = write_model(tmp_path, "ok")
    kwargs = {}
    volumes = [volume]
    if model_kind == "missing":
        model = tmp_path / "nope.ts"
    elif model_kind == "empty-channel":
        volumes = [volume, None]
    else:
        kwargs["method"] = Method.COUNTERFACTUAL
    before = vm.node_ids(scene)
    job = _job(scene, volumes, model, [], **kwargs)
    assert not job.start()
    assert words in job.result.message and vm.node_ids(scene) == before


def test_a_model_that_does_not_load_gives_the_cores_message_and_no_nodes(scene, volume, tmp_path):
    bad = tmp_path / "not-a-model.pt"
    bad.write_text("not a model")
    out = tmp_path / "out-bad"
    before = vm.node_ids(scene)
    job = _job(scene, [volume], bad, [])
    assert job.start()
    result = job.wait(timeout=60)
    assert result.outcome is Outcome.BAD_INPUT
    assert result.message.startswith("cannot load model") and "choose a valid model" in result.message
    assert vm.node_ids(scene) == before
    assert not out.exists() and job.out_dir is not None and not job.out_dir.exists()


def test_a_crash_is_reported_with_the_log_tail(scene, volume, tmp_path):
    job = _job(scene, [volume], write_model(tmp_path, "crash"), [])
    job.start()
    result = job.wait(timeout=60)
    assert result.outcome is Outcome.FAILED
    assert "exit code 1" in result.message and "RuntimeError: boom" in result.message


def test_cancel_stops_the_process_tree_and_adds_nothing(scene, volume, tmp_path):
    events = []
    out = tmp_path / "kept-out"
    before = vm.node_ids(scene)
    job = _job(scene, [volume], write_model(tmp_path, "slow"), events, out_dir=out)
    assert job.start()
    deadline = time.monotonic() + 30
    while not any(isinstance(e, Progress) for e in events) or not (out / "grandchild.pid").exists():
        job.poll()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    grandchild = int((out / "grandchild.pid").read_text(encoding="utf-8"))
    job.cancel()
    assert job.machine.button.text == "Cancelling…"
    result = job.wait(timeout=30)
    assert result.outcome is Outcome.CANCELLED and result.message.startswith("Cancelled")
    assert vm.node_ids(scene) == before
    time.sleep(0.2)
    stat = Path(f"/proc/{grandchild}/stat")
    assert not stat.exists() or stat.read_text(encoding="utf-8").split()[2] == "Z"
    assert out.exists()  # a folder the user chose is never deleted


def test_counterfactual_shows_three_linked_views(scene, volume, tmp_path, run_folder):
    from VoxCauseLib import display

    region = vm.load_segmentation(scene, run_folder / "explanation.seg.nrrd", name="lesion seg", reference=volume)
    job = _job(
        scene, [volume], write_model(tmp_path, "ok"), [], method=Method.COUNTERFACTUAL, region=(region, "sufficient")
    )
    assert job.start()
    assert job.command[2] == "counterfactual" and "--mask" in job.command
    result = job.wait(timeout=60)
    assert result.outcome is Outcome.SUCCEEDED, result.message
    assert result.nodes.removed.GetName() == "case region removed"
    assert result.nodes.only.GetName() == "case region only"
    ids = [
        scene.GetNodeByID(f"vtkMRMLSliceCompositeNode{v}").GetBackgroundVolumeID() for v in ("Red", "Yellow", "Green")
    ]
    assert ids == [volume.GetID(), result.nodes.removed.GetID(), result.nodes.only.GetID()]
    assert scene.GetFirstNodeByClass("vtkMRMLLayoutNode").GetViewArrangement() == display.COUNTERFACTUAL_LAYOUT_ID
    assert "ΔDrop: 0.700" in result.text


def test_the_report_step_adds_report_md_to_the_results_text(scene, volume, tmp_path):
    events = []
    job = _job(scene, [volume], write_model(tmp_path, "ok"), events, report=True)
    assert job.start()
    result = job.wait(timeout=60)
    assert result.outcome is Outcome.SUCCEEDED, result.message
    assert "writing the report" in [e.stage for e in events if isinstance(e, Progress)]
    assert result.text.endswith("# Findings\nThe explanation lies in the bright lesion.")
    assert [type(e).__name__ for e in events].count("Finished") == 1


def test_a_failing_report_step_still_shows_the_results(scene, volume, tmp_path, monkeypatch):
    import VoxCauseLib.job as job_module

    monkeypatch.setattr(
        job_module,
        "build_report_command",
        lambda out, launcher: [*launcher, "report", "/nowhere", "--progress", "json"],
    )
    job = _job(scene, [volume], write_model(tmp_path, "ok"), [], report=True)
    assert job.start()
    result = job.wait(timeout=60)
    assert result.outcome is Outcome.SUCCEEDED and result.nodes.map is not None
    assert any("report step failed (exit code 2)" in line for line in job.log)


def test_the_scene_file_is_written_on_request(scene, volume, tmp_path):
    from VoxCauseLib.bundle import read_scene_mrb

    job = _job(scene, [volume], write_model(tmp_path, "ok"), [], write_scene_file=True)
    assert job.start()
    result = job.wait(timeout=60)
    assert result.outcome is Outcome.SUCCEEDED, result.message
    opened = read_scene_mrb(result.out_dir / "voxcause-scene.mrb")
    try:
        assert opened.GetFirstNodeByName("input0 responsibility map") is not None
    finally:
        opened.Clear(True)
