"""A batch never deletes what the user made, says how many cases an interruption left, and leaves no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from voxcause.batch import Job, read_manifest, run_batch
from voxcause.batch.runner import BatchInterrupted

CASEWORK = "batch_casework:smooth_case"
HERE = Path(__file__).parent


def _cases(cohort):
    return [c for c in read_manifest(cohort["manifest"], model=str(cohort["model"])) if c.id != "broken"]


def test_a_users_folder_named_like_a_case_is_kept_and_that_case_fails(cohort, tmp_path):
    out = tmp_path / "out"
    (out / "c1").mkdir(parents=True)
    (out / "c1" / "notes.txt").write_text("mine")
    report = run_batch(_cases(cohort), Job(command=CASEWORK), out=out, workers=0)
    statuses = {r.id: r.status for r in report.results}
    assert statuses == {"c0": "done", "c1": "failed", "c2": "done", "c3": "done", "c4": "done"}
    assert "no batch wrote it" in next(r for r in report.results if r.id == "c1").error
    assert (out / "c1" / "notes.txt").read_text() == "mine" and sorted(os.listdir(out / "c1")) == ["notes.txt"]


def test_an_interrupted_batch_says_how_many_cases_were_left(cohort, tmp_path):
    out = tmp_path / "out"
    cases = _cases(cohort)
    with pytest.raises(BatchInterrupted) as stopped:
        run_batch(cases, Job(command="batch_casework:interrupt_case"), out=out, workers=0)
    assert (stopped.value.finished, stopped.value.total) == (0, 5)
    table = (out / "results.md").read_text(encoding="utf-8")
    assert "0 of 5 cases: 0 done, 0 skipped, 0 failed, 5 not run" in table
    assert "interrupted: 5 cases left" in table

    def stop_after_first(result, done, total):
        if result.status == "done":
            raise KeyboardInterrupt

    with pytest.raises(BatchInterrupted):
        run_batch(cases, Job(command=CASEWORK), out=out, workers=0, progress=stop_after_first)
    assert "1 of 5 cases: 1 done, 0 skipped, 0 failed, 4 not run" in (out / "results.md").read_text(encoding="utf-8")


def test_the_cli_reports_the_cases_left(cohort, tmp_path, monkeypatch, capsys):
    import voxcause.batch
    from voxcause.cli.main import main

    def interrupted(cases, job, **kwargs):
        raise BatchInterrupted(1, len(cases))

    monkeypatch.setattr(voxcause.batch, "run_batch", interrupted)
    code = main(["batch", str(cohort["manifest"]), "--model", str(cohort["model"]), "--out", str(tmp_path / "o"),
                 "--progress", "none"])
    assert code == 130
    assert "interrupted: 1 of 6 cases finished, 5 left" in capsys.readouterr().err


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_batch(cohort, tmp_path):
    log = tmp_path / "log.txt"
    script = (
        "import sys; from voxcause.batch import Job, read_manifest, run_batch\n"
        f"cases = [c for c in read_manifest({str(cohort['manifest'])!r}, model={str(cohort['model'])!r})"
        " if c.id != 'broken']\n"
        f"run_batch(cases, Job(command={CASEWORK!r}, options={{'sleep': 600, 'log': {str(log)!r}}}),"
        f" out={str(tmp_path / 'out')!r}, workers=2)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, "-c", script], env=env, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and (not log.exists() or log.read_text().count("start") < 2):
            time.sleep(0.2)
        workers = {int(line.split()[2]) for line in log.read_text().splitlines()}
        assert len(workers) == 2 and workers <= _children(parent.pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.2)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "worker processes outlived their batch"


def test_channel_order_and_memory_refusals_and_their_overrides_reach_batch_cases(tmp_path):
    import json

    import torch
    from batch_casework import write_manifest
    from voxcause.testing import make_case, write_nifti

    known = make_case("single", size=24)
    torch.jit.script(known.model).save(str(tmp_path / "model.ts"))
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"model": "model.ts", "channels": ["T1", "T1c", "T2", "FLAIR"]}))
    files = [write_nifti(known.image[0], tmp_path / f"case_{name}.nii.gz") for name in ("FLAIR", "T1", "T1c", "T2")]
    manifest = write_manifest(tmp_path / "m.csv", [{"image": ";".join(files), "id": "glob"}])
    cases = read_manifest(manifest, model=str(card))
    refused = run_batch(cases, Job(options={"iterations": 2}), out=tmp_path / "a", workers=0).results[0]
    assert refused.status == "failed" and "its name says FLAIR" in refused.error
    checked = Job(options={"iterations": 2}, command_options={"channel_order_checked": True, "max_memory": "1M"})
    capped = run_batch(cases, checked, out=tmp_path / "b", workers=0).results[0]
    assert capped.status == "failed" and "is --max-memory" in capped.error, capped.error
