"""Batches of real explanations (`voxcause.explain`, ReX, a scripted known-cause model): local processes and a
Dask LocalCluster agree voxel for voxel; a killed Dask worker loses no case; a killed batch resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from voxcause.batch import Job, read_manifest, run_batch

JOB = Job(method="rex", seed=3, options={"iterations": 6}, threads=1)


def _cases(cohort):
    return read_manifest(cohort["manifest"], model=str(cohort["model"]))


def _outputs(report) -> dict[str, tuple]:
    """Per case: status and, when finished, the map array and the summary's numbers."""
    seen = {}
    for result in report.results:
        if result.status == "failed":
            seen[result.id] = ("failed", result.error)
            continue
        folder = Path(result.out)
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        numbers = (summary["score"], summary["forward_passes"], summary["target"]["label"],
                   json.dumps(summary.get("sufficient"), sort_keys=True))
        seen[result.id] = ("ok", sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "map.nii.gz"))), numbers)
    return seen


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key][0] == b[key][0], key
        if a[key][0] == "ok":
            np.testing.assert_array_equal(a[key][1], b[key][1], err_msg=key)
            assert a[key][2] == b[key][2], key
        else:
            assert a[key][1] == b[key][1]


def test_inline_batch_explains_and_reports(real_cohort, tmp_path):
    out = tmp_path / "out"
    report = run_batch(_cases(real_cohort), JOB, out=out, workers=0)
    statuses = {r.id: r.status for r in report.results}
    assert statuses == {"c0": "done", "broken": "failed", "c1": "done", "c2": "done", "c3": "done"}
    assert report.results[1].error.startswith("cannot read image")
    for result in report.results:
        if result.status == "done":
            assert result.score > 0.99 and result.forward_passes > 10 and result.target == "1"
            summary = json.loads((Path(result.out) / "summary.json").read_text(encoding="utf-8"))
            assert result.certificate == summary["certificate"]["verdict"]  # the verdict is in the table
            names = {p.name for p in Path(result.out).iterdir()}
            assert {"map.nii.gz", "summary.json", "explanation.seg.nrrd", "overview.png", "done.json"} <= names
            done = json.loads((Path(result.out) / "done.json").read_text(encoding="utf-8"))
            assert done["hash"] == result.hash and done["settings"]["options"] == {"iterations": 6}
    # the map peaks inside the case's bright sphere
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(real_cohort["data"] / "case0.nii.gz")))
    peak = np.unravel_index(np.argmax(_outputs(report)["c0"][1]), image.shape)
    assert image[peak] > 1.0
    table = (out / "results.md").read_text(encoding="utf-8")
    assert "5 cases: 4 done, 0 skipped, 1 failed; certificates: " in table and "| certificate |" in table
    header = (out / "results.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[:4] == ["id", "status", "score", "certificate"]


def _staging_pids(out: Path) -> list[tuple[str, int]]:
    folder = out / ".voxcause-staging"
    found = []
    for item in folder.iterdir() if folder.exists() else []:
        parts = item.name.split(".")
        if len(parts) == 3 and parts[1].isdigit():
            found.append((parts[0], int(parts[1])))
    return found


@pytest.mark.slow
def test_local_and_dask_agree_and_a_killed_worker_loses_nothing(real_cohort, tmp_path):
    distributed = pytest.importorskip("distributed")
    cases = _cases(real_cohort)
    local = run_batch(cases, JOB, out=tmp_path / "local", workers=2)
    expected = _outputs(local)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        dask = run_batch(cases, JOB, out=tmp_path / "dask", scheduler=cluster.scheduler_address)
        _assert_same(_outputs(dask), expected)
        assert {r.worker for r in dask.results if r.status == "done"} != {r.worker for r in local.results}

        # kill the worker process while it computes a case (its staging folder names its pid)
        out, killed = tmp_path / "killed", []

        def kill_first() -> None:
            deadline = time.time() + 120
            while time.time() < deadline and not killed:
                running = _staging_pids(out)
                if running:  # kill at once: a case takes about a second
                    case_id, pid = running[0]
                    os.kill(pid, signal.SIGKILL)
                    killed.append((case_id, pid))
                time.sleep(0.05)

        killer = threading.Thread(target=kill_first)
        killer.start()
        try:
            report = run_batch(cases, JOB, out=out, scheduler=cluster.scheduler_address)
        finally:
            killed.append(None)
            killer.join()
    assert killed[0] is not None, "no case was seen running"
    case_id, pid = killed[0]
    _assert_same(_outputs(report), expected)
    rerun = next(r for r in report.results if r.id == case_id)
    assert rerun.status == "done" and not rerun.worker.endswith(f":{pid}")  # finished by another process
    assert not (out / ".voxcause-staging").exists()


RUNNER = """
import sys
from voxcause.batch import Job, read_manifest, run_batch
cases = read_manifest(sys.argv[1], model=sys.argv[2])
run_batch(cases, Job(method="rex", seed=3, options={"iterations": 6}, threads=1), out=sys.argv[3], workers=0)
"""


@pytest.mark.slow
def test_batch_killed_midway_resumes_without_recomputing(real_cohort, tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-c", RUNNER, str(real_cohort["manifest"]), str(real_cohort["model"]),
                                str(out)])
    try:
        deadline = time.time() + 180
        while not (out / "c0" / "done.json").exists() and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    finished = sorted(p.parent.name for p in out.glob("*/done.json"))
    assert "c0" in finished and len(finished) < 4, finished
    stamps = {name: os.stat(out / name / "done.json").st_mtime_ns for name in finished}
    report = run_batch(_cases(real_cohort), JOB, out=out, workers=0)
    assert {r.id for r in report.results if r.status == "skipped"} == set(finished)
    assert report.executed == 5 - len(finished)  # the others, and the broken case again
    assert {name: os.stat(out / name / "done.json").st_mtime_ns for name in finished} == stamps
    assert {r.id: r.status for r in report.results if r.id not in finished} == {
        name: ("failed" if name == "broken" else "done") for name in ("c0", "broken", "c1", "c2", "c3")
        if name not in finished
    }
