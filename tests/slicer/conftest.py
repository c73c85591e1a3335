"""Fixtures for the Slicer-module tests.

Three tiers: plain-Python tests of `VoxCauseLib` (any environment), real-MRML tests (marker `slicer`, need
the slicer-core wheel: `bash .ci/setup_slicer.sh`), and `.ui` checks (PySide6, offscreen). Tests whose
packages are missing are skipped, never failed.
"""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO / "slicer_extension"
for folder in (MODULE_DIR, Path(__file__).parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from slicer_helpers import FAKE_CLI, make_image, write_model  # noqa: E402


@pytest.fixture()
def image_path(tmp_path: Path) -> Path:
    return make_image(tmp_path / "case.nii.gz")


@pytest.fixture()
def run_folder(tmp_path: Path, image_path: Path) -> Path:
    """A run folder as `voxcause explain` writes it (made by the stand-in CLI)."""
    import subprocess

    out = tmp_path / "run"
    model = write_model(tmp_path, "ok")
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [
            sys.executable,
            str(FAKE_CLI),
            "explain",
            str(image_path),
            "--model",
            str(model),
            "--method",
            "rex",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--progress",
            "json",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    return out


@pytest.fixture()
def mrml():
    """Slicer's MRML from the slicer-core wheel (skips when it is not installed)."""
    pytest.importorskip("slicer_core")
    import slicer

    return slicer


@pytest.fixture()
def scene(mrml):
    """A bare scene with Slicer's default colour tables, as the application has."""
    scene = mrml.vtkMRMLScene()
    colors = mrml.vtkMRMLColorLogic()
    colors.SetMRMLScene(scene)
    colors.SetMRMLScene(None)
    yield scene
    scene.Clear(True)
