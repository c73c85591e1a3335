"""Never delete what the user made: the output manifest, stale staging, Ctrl-C during a write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
import SimpleITK as sitk
from voxcause.errors import InputError
from voxcause.io import atomic_directory, atomic_path, write_image
from voxcause.io.atomic import MANIFEST, recorded


def _write(out, **files: str) -> None:
    with atomic_directory(out) as staging:
        for name, text in files.items():
            (staging / name).write_text(text)


def test_a_users_file_or_folder_of_an_output_name_is_refused_and_kept(tmp_path):
    out = tmp_path / "out"
    (out / "overview.png").mkdir(parents=True)
    (out / "overview.png" / "mine.txt").write_text("the user's")
    (out / "summary.json").write_text("the user's summary")
    with pytest.raises(InputError, match="a folder of that name is already there and voxcause did not write it"):
        _write(out, **{"map.nii.gz": "m", "overview.png": "png"})
    assert (out / "overview.png" / "mine.txt").read_text() == "the user's"
    assert not (out / "map.nii.gz").exists(), "nothing moved when one name is taken"
    with pytest.raises(InputError, match="a file of that name is already there"):
        _write(out, **{"summary.json": "{}"})
    assert (out / "summary.json").read_text() == "the user's summary"
    with pytest.raises(InputError, match="voxcause did not write it"), atomic_path(out / "summary.json") as temp:
        temp.write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no staging left behind"


def test_what_it_wrote_before_is_replaced_and_other_files_kept(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    _write(out, **{"summary.json": "1"})
    _write(out, **{"summary.json": "2", "map.nii.gz": "m"})
    assert (out / "summary.json").read_text() == "2" and (out / "notes.txt").read_text() == "keep"
    assert recorded(out) == {"map.nii.gz": "file", "summary.json": "file"}
    (out / "summary.json").unlink()
    (out / "summary.json").mkdir()  # the user put a folder where voxcause's file was
    with pytest.raises(InputError, match="a folder of that name"):
        _write(out, **{"summary.json": "3"})


def test_staging_left_by_a_killed_run_is_removed_by_the_next(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)
    stale = tmp_path / f".out.voxcause-staging-{dead}-abc123"
    stale.mkdir()
    (stale / "map.nii.gz").write_bytes(b"partial")
    partial = tmp_path / f".summary.json.voxcause-partial-{dead}-xyz.json"
    partial.write_text("half")
    live = tmp_path / f".other.voxcause-staging-{os.getppid()}-def456"  # a running process's: not touched
    live.mkdir()
    users = tmp_path / f".draft.partial-{dead}-notes.txt"  # the user's own, without voxcause's mark: not touched
    users.write_text("mine")
    _write(tmp_path / "out", **{"summary.json": "{}"})
    assert not stale.exists() and not partial.exists() and live.exists()
    assert users.read_text() == "mine"


def test_ctrl_c_while_simpleitk_writes_stops_the_run_with_nothing_in_place(tmp_path, monkeypatch):
    """SimpleITK swallows a SIGINT that arrives inside WriteImage; the writer holds it and raises it after."""
    original = sitk.WriteImage

    def write_then_interrupt(*args, **kwargs):
        timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        original(*args, **kwargs)
        timer.join()

    monkeypatch.setattr(sitk, "WriteImage", write_then_interrupt)
    reference = sitk.Image(8, 8, 8, sitk.sitkFloat32)
    array = np.random.default_rng(0).random((160, 160, 160), dtype=np.float32)  # a write of ~1 s
    big = sitk.GetImageFromArray(array)
    with pytest.raises(KeyboardInterrupt):
        write_image(array, big, tmp_path / "map.nii.gz")
    assert not (tmp_path / "map.nii.gz").exists()
    assert [p.name for p in tmp_path.iterdir()] == [], "no temporary file left"
    monkeypatch.undo()
    write_image(np.zeros((8, 8, 8), np.float32), reference, tmp_path / "after.nii.gz")  # SIGINT handler restored
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert json.loads((tmp_path / MANIFEST).read_text())["written"] == {"after.nii.gz": "file"}
