"""The module's job against the real `voxcause` command line (no stand-in), with a tiny TorchScript model made here.

The model's class 1 logit grows with the brightest 4x4x4 block, so the synthetic case's bright sphere is the
cause; the test checks that the real CLI's progress lines, exit code and files go through the job into MRML and
that the map peaks on the sphere.
"""

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from slicer_helpers import LESION, ORIGIN, SPACING
from VoxCauseLib import mrml as vm
from VoxCauseLib.command import LAUNCHER, ExplainRequest
from VoxCauseLib.job import ExplainJob
from VoxCauseLib.options import Method
from VoxCauseLib.progress import Progress
from VoxCauseLib.state import Outcome

pytestmark = [
    pytest.mark.slicer,
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("voxcause.cli.main") is None, reason="voxcause CLI not installed"),
]


def _bright_block_model(path: Path) -> Path:
    torch = pytest.importorskip("torch")

    class BrightBlock(torch.nn.Module):
        def forward(self, x):
            score = torch.nn.functional.avg_pool3d(x, 3, stride=1).amax(dim=(1, 2, 3, 4))
            return torch.stack([150.0 - score, score - 150.0], dim=1) / 20.0

    with warnings.catch_warnings():  # torch.jit is deprecated in torch 2.13 but is what users' .ts files are
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(BrightBlock()).save(str(path))
    return path


def test_real_cli_run_through_the_job(scene, image_path, tmp_path):
    model = _bright_block_model(tmp_path / "bright.ts")
    volume = vm.load_volume(scene, image_path, name="case")
    events = []
    request = ExplainRequest(
        images=(volume,), model=str(model), method=Method.REX, iterations=4, target="1", out_dir=tmp_path / "run"
    )
    job = ExplainJob(scene, request, launcher=[sys.executable, "-c", LAUNCHER], on_event=events.append)
    assert job.start()
    result = job.wait(timeout=300)
    assert result.outcome is Outcome.SUCCEEDED, result.message + "\n" + "\n".join(job.log[-20:])
    fractions = [e.fraction for e in events if isinstance(e, Progress)]
    assert fractions and fractions == sorted(fractions) and fractions[-1] == 1.0  # the bar never moves back
    names = vm.segment_names(result.nodes.explanation)
    assert "sufficient explanation" in names
    peak = np.array(vm.peak_ras(result.nodes.map))
    centre = np.array(ORIGIN) + np.array(LESION[::-1]) * np.array(SPACING)
    centre_ras = np.array([-centre[0], -centre[1], centre[2]])
    assert np.linalg.norm(peak - centre_ras) < 6.0, (peak, centre_ras)
    assert result.nodes.map.GetSpacing() == pytest.approx(SPACING)
    assert "Target:" in result.text


def test_real_cli_model_that_does_not_load(scene, image_path, tmp_path):
    bad = tmp_path / "not-a-model.ts"
    bad.write_text("not a model")
    volume = vm.load_volume(scene, image_path, name="case")
    before = vm.node_ids(scene)
    job = ExplainJob(scene, ExplainRequest(images=(volume,), model=str(bad)), launcher=[sys.executable, "-c", LAUNCHER])
    assert job.start()
    result = job.wait(timeout=300)
    assert result.outcome is Outcome.BAD_INPUT, (result.outcome, result.message, job.log[-5:])
    assert result.message and "\n" not in result.message
    assert vm.node_ids(scene) == before
