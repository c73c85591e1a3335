"""The batch runner with a model-free per-case function: local processes, inline, Dask, resume, failures,
and worker processes killed mid-case."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from voxcause.batch import Job, read_manifest, run_batch
from voxcause.errors import InputError

CASEWORK = "batch_casework:smooth_case"


def _map(case_dir: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(case_dir / "map.nii.gz")))


def _outcome(report) -> dict[str, tuple]:
    """Per case: status, score and the map's bytes digest (what must match between runs)."""
    result = {}
    for case in report.results:
        if case.status == "failed":
            result[case.id] = ("failed",)
        else:
            result[case.id] = ("ok", round(case.score, 6), _map(Path(case.out)).tobytes())
    return result


def _cases(cohort):
    return read_manifest(cohort["manifest"], model=str(cohort["model"]))


@pytest.mark.slow
def test_local_processes_record_failure_and_finish_the_rest(cohort, tmp_path):
    out = tmp_path / "out"
    seen = []
    report = run_batch(_cases(cohort), Job(command=CASEWORK), out=out, workers=2,
                       progress=lambda result, done, total: seen.append((result.id, done, total)))
    statuses = {r.id: r.status for r in report.results}
    assert statuses == {"c0": "done", "c1": "done", "broken": "failed", "c2": "done", "c3": "done", "c4": "done"}
    broken = next(r for r in report.results if r.id == "broken")
    assert "cannot read image" in broken.error and "\n" not in broken.error
    assert (out / "broken.error.txt").read_text(encoding="utf-8").count("Traceback") == 1
    assert not (out / "broken").exists() and not (out / ".voxcause-staging").exists()
    assert sorted(done for _, done, _ in seen) == [1, 2, 3, 4, 5, 6] and {t for *_, t in seen} == {6}
    # results table: manifest order, one row per case, header as documented
    lines = (out / "results.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id,status,score,certificate,forward_passes,seconds,out,error,target,label,patient"
    assert [line.split(",")[0] for line in lines[1:]] == ["c0", "c1", "broken", "c2", "c3", "c4"]
    assert "6 cases: 5 done, 0 skipped, 1 failed" in (out / "results.md").read_text(encoding="utf-8")
    assert report.executed == 6 and report.counts == {"done": 5, "skipped": 0, "failed": 1}


def test_rerun_skips_finished_cases_and_retries_failed(cohort, tmp_path):
    out = tmp_path / "out"
    cases = _cases(cohort)
    first = run_batch(cases, Job(command=CASEWORK), out=out, workers=0)
    stamps = {c.id: os.stat(out / c.id / "done.json").st_mtime_ns for c in cases if c.id != "broken"}
    log = tmp_path / "log.txt"
    second = run_batch(cases, Job(command=CASEWORK, options={}), out=out, workers=0)
    assert {r.id: r.status for r in second.results} == {**{k: "skipped" for k in stamps}, "broken": "failed"}
    assert second.executed == 1  # only the failed case was tried again
    assert {k: os.stat(out / k / "done.json").st_mtime_ns for k in stamps} == stamps
    assert [r.score for r in second.results] == [r.score for r in first.results]
    # changing a setting (seed) or one input byte reruns exactly the affected cases
    write = sitk.ReadImage(str(cohort["data"] / "case3.nii.gz"))
    sitk.WriteImage(write * 2, str(cohort["data"] / "case3.nii.gz"))
    third = run_batch(cases, Job(command=CASEWORK, options={"log": str(log)}), out=out, workers=0)
    assert third.executed == 6  # new options = new settings for every case
    fourth = run_batch(_cases(cohort), Job(command=CASEWORK, options={"log": str(log)}), out=out, workers=0)
    assert fourth.executed == 1


def test_interrupted_batch_resumes(cohort, tmp_path):
    """Stop a batch after its first finished case (as Ctrl-C would); the rerun computes only the others."""
    out = tmp_path / "out"
    cases = [c for c in _cases(cohort) if c.id != "broken"]

    class Stop(Exception):
        pass

    def stop_after_first(result, done, total):
        if result.status == "done":
            raise Stop

    with pytest.raises(Stop):
        run_batch(cases, Job(command=CASEWORK), out=out, workers=0, progress=stop_after_first)
    finished = [c.id for c in cases if (out / c.id / "done.json").exists()]
    assert finished == ["c0"]
    stamp = os.stat(out / "c0" / "done.json").st_mtime_ns
    report = run_batch(cases, Job(command=CASEWORK), out=out, workers=0)
    assert [r.status for r in report.results] == ["skipped", "done", "done", "done", "done"]
    assert report.executed == 4 and os.stat(out / "c0" / "done.json").st_mtime_ns == stamp


def _kill_first_started(log: Path, stop: threading.Event, killed: list[int]) -> None:
    """Wait until a case has started in some process, then SIGKILL that process (once)."""
    while not stop.is_set():
        if log.exists():
            lines = log.read_text(encoding="utf-8").split("\n")
            starts = [line.split() for line in lines if line.startswith("start")]
            if starts:
                time.sleep(0.3)  # well inside the case's 1.5 s of work
                pid = int(starts[0][2])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        time.sleep(0.05)


def _run_with_a_kill(cases, job, out, log, **where):
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_first_started, args=(log, stop, killed))
    killer.start()
    try:
        report = run_batch(cases, job, out=out, **where)
    finally:
        stop.set()
        killer.join()
    assert len(killed) == 1
    starts = [line.split() for line in log.read_text(encoding="utf-8").splitlines()]
    killed_ids = {case_id for _, case_id, pid in starts if int(pid) == killed[0]}
    assert killed_ids, "the killed process had started a case"
    return report, killed_ids


@pytest.mark.slow
def test_local_worker_killed_mid_case_loses_nothing(cohort, tmp_path):
    cases = [c for c in _cases(cohort) if c.id != "broken"]
    reference = run_batch(cases, Job(command=CASEWORK), out=tmp_path / "ref", workers=0)
    log = tmp_path / "log.txt"
    job = Job(command=CASEWORK, options={"sleep": 1.5, "log": str(log)})
    report, killed_ids = _run_with_a_kill(cases, job, tmp_path / "out", log, workers=2)
    assert report.worker_deaths == 1
    assert "worker processes died 1 times" in (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert {r.id: r.status for r in report.results} == dict.fromkeys(["c0", "c1", "c2", "c3", "c4"], "done")
    assert _outcome(report) == _outcome(reference)
    assert not (tmp_path / "out" / ".voxcause-staging").exists()


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as local:
        yield local


@pytest.mark.slow
def test_dask_matches_local(cohort, tmp_path, cluster):
    cases = _cases(cohort)
    local = run_batch(cases, Job(command=CASEWORK), out=tmp_path / "local", workers=2)
    dask = run_batch(cases, Job(command=CASEWORK), out=tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert [r.id for r in dask.results] == [r.id for r in local.results]
    assert _outcome(dask) == _outcome(local)
    assert next(r for r in dask.results if r.id == "broken").error.startswith("cannot read image")
    again = run_batch(cases, Job(command=CASEWORK), out=tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert again.executed == 1  # the broken case only
    with pytest.raises(InputError, match="workers that offer a GPU resource"):  # CPU-only cluster
        run_batch(cases, Job(command=CASEWORK, device="cuda"), out=tmp_path / "gpu",
                  scheduler=cluster.scheduler_address)


@pytest.mark.slow
def test_dask_worker_killed_mid_case_loses_nothing(cohort, tmp_path, cluster):
    cases = [c for c in _cases(cohort) if c.id != "broken"]
    reference = run_batch(cases, Job(command=CASEWORK), out=tmp_path / "ref", workers=0)
    log = tmp_path / "log.txt"
    job = Job(command=CASEWORK, options={"sleep": 1.5, "log": str(log)})
    report, killed_ids = _run_with_a_kill(cases, job, tmp_path / "out", log, scheduler=cluster.scheduler_address)
    assert {r.id: r.status for r in report.results} == dict.fromkeys(["c0", "c1", "c2", "c3", "c4"], "done")
    assert _outcome(report) == _outcome(reference)
    starts = [line.split() for line in log.read_text(encoding="utf-8").splitlines()]
    for case_id in killed_ids:  # the killed case was started again elsewhere and finished there
        assert sum(1 for _, cid, _ in starts if cid == case_id) >= 2
    assert not (tmp_path / "out" / ".voxcause-staging").exists()


@pytest.mark.slow
def test_workers_share_the_cores_of_their_host(cohort, tmp_path, cluster):
    """Each case runs torch on cores / (cases running at once on its host), locally and on Dask, so two workers
    never oversubscribe the CPU and one worker is not held to Dask's one-thread default (OMP_NUM_THREADS=1)."""
    import distributed
    from voxcause.batch.execute import cores

    cases = [c for c in _cases(cohort) if c.id != "broken"][:2]
    job = Job(command="batch_casework:threads_case")

    def threads(report) -> set[float]:
        assert not report.failed, report.failed
        return {r.score for r in report.results}

    shared = max(1, cores() // 2)
    assert threads(run_batch(cases, job, out=tmp_path / "local", workers=2)) == {shared}
    assert threads(run_batch(cases, job, out=tmp_path / "dask2", scheduler=cluster.scheduler_address)) == {shared}
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as single:
        assert threads(run_batch(cases, job, out=tmp_path / "dask1", scheduler=single.scheduler_address)) == {cores()}
        fixed = Job(command="batch_casework:threads_case", threads=1)
        assert threads(run_batch(cases, fixed, out=tmp_path / "fixed", scheduler=single.scheduler_address)) == {1}


def test_one_batch_per_output_folder(cohort, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    lock = out / ".voxcause-batch.lock"
    lock.write_text("another-host 4242")
    with pytest.raises(InputError, match="another voxcause batch .pid 4242 on another-host. is writing"):
        run_batch(_cases(cohort), Job(command=CASEWORK), out=out, workers=0)
    lock.write_text(f"{socket.gethostname()} {2**22 + 12345}")  # a dead process on this host: taken over
    report = run_batch(_cases(cohort), Job(command=CASEWORK), out=out, workers=0)
    assert report.counts["done"] == 5 and not lock.exists()


def test_cuda_cases_ask_dask_for_one_gpu():
    from voxcause.batch.distributed import resources_for

    assert resources_for(Job(device="cuda")) == {"GPU": 1}
    assert resources_for(Job(device="cuda:1")) == {"GPU": 1}
    assert resources_for(Job(device="cpu")) is None
