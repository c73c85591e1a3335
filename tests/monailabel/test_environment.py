"""The MONAI Label set-up and start refuse an environment holding pydicom 3, with the reason (issue 21, 14).

With pydicom 3 (``pip install voxcause[dicom]`` beside monailabel) MONAI Label 0.8.5 cannot even be imported:
pydicom-seg needs a module pydicom 3 removed. A throw-away environment holding only pydicom 3.0.1's metadata
stands for it: the check reads metadata and imports nothing, so the refusal is the same as in a full one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ml_server import REPO

pytestmark = pytest.mark.monailabel


@pytest.fixture(scope="module")
def pydicom3_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("pydicom3") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    info = site / "pydicom-3.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pydicom\nVersion: 3.0.1\n")
    return venv


def _installed(venv: Path) -> list[str]:
    return sorted(path.name for path in next((venv / "lib").glob("python3*/site-packages")).iterdir())


def _assert_refused_for_pydicom3(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "pydicom 3.0.1 is installed" in done.stderr and "pydicom-seg" in done.stderr, done.stderr
    assert "pip install 'pydicom<3'" in done.stderr, done.stderr  # the fix


def test_setup_refuses_an_environment_with_pydicom3_and_changes_nothing(pydicom3_venv):
    before = _installed(pydicom3_venv)
    done = subprocess.run(["bash", str(REPO / "scripts" / "setup_monailabel.sh"), str(pydicom3_venv)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    _assert_refused_for_pydicom3(done)
    assert "not changing" in done.stderr
    assert _installed(pydicom3_venv) == before


def test_start_refuses_an_environment_with_pydicom3_before_monailabel_runs(pydicom3_venv, tmp_path):
    done = subprocess.run(["bash", str(REPO / "scripts" / "start_monailabel.sh"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "VOXCAUSE_ML_VENV": str(pydicom3_venv)})
    _assert_refused_for_pydicom3(done)
    assert "monailabel is not installed" in done.stderr  # and what else is missing, in the same run
    assert "Traceback" not in done.stderr


def test_the_monailabel_environment_itself_passes_the_check():
    done = subprocess.run([sys.executable, str(REPO / "monailabel_app" / "check_environment.py")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and not done.stderr, done.stderr
