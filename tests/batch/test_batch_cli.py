"""``voxcause batch`` through its argparse parser: the table, JSON progress, exit codes, bad input."""

from __future__ import annotations

import argparse
import json

import pytest
from voxcause.cli import batch as batch_cli
from voxcause.errors import InputError


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="voxcause")
    batch_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.run(args)


def test_cli_runs_resumes_and_reports(real_cohort, tmp_path, capsys):
    out = tmp_path / "out"
    manifest = real_cohort["data"] / "two.csv"
    manifest.write_text("image,id,target\ncase0.nii.gz,c0,1\nbroken.nii.gz,broken,1\n")
    argv = ["batch", str(manifest), "--model", str(real_cohort["model"]), "--out", str(out),
            "--workers", "0", "--option", "iterations=2", "--seed", "3", "--progress", "json"]
    assert _run(argv) == 1  # one corrupt case
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.err.splitlines()]
    assert [e["fraction"] for e in events[:-1]] == [0.5, 1.0]
    assert {e["stage"] for e in events[:-1]} == {"case c0: done", "case broken: failed"}
    assert events[-1] == {"event": "done", "out": str(out)}
    rows = (out / "results.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 3 and rows[2].startswith("broken,failed,,,") and "cannot read image" in rows[2]
    done = json.loads((out / "c0" / "done.json").read_text(encoding="utf-8"))
    assert done["settings"]["options"] == {"iterations": 2} and done["settings"]["seed"] == 3

    assert _run([*argv[:-2], "--progress", "none"]) == 1
    table = capsys.readouterr().out
    assert "2 cases: 0 done, 1 skipped, 1 failed" in table


def test_cli_bad_input(real_cohort, tmp_path, monkeypatch):
    monkeypatch.setattr("voxcause.batch.distributed.CONNECT_TIMEOUT", "1s")
    bad = tmp_path / "bad.csv"
    bad.write_text("path,id\ncase0.nii.gz,a\n")
    with pytest.raises(InputError, match="no 'image' column"):
        _run(["batch", str(bad), "--model", str(real_cohort["model"]), "--out", str(tmp_path / "o")])
    with pytest.raises(InputError, match="is not KEY=VALUE"):
        _run(["batch", str(real_cohort["manifest"]), "--model", str(real_cohort["model"]), "--option", "iterations"])
    with pytest.raises(InputError, match="iterations=0 is outside 1..500"):  # before any case runs
        _run(["batch", str(real_cohort["manifest"]), "--model", str(real_cohort["model"]), "--option", "iterations=0",
              "--out", str(tmp_path / "o0")])
    assert not (tmp_path / "o0").exists()
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        _run(["batch", str(real_cohort["manifest"]), "--model", str(real_cohort["model"]), "--out",
              str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:1", "--progress", "none"])


def test_main_prints_one_line_and_exits_2_for_a_bad_manifest(real_cohort, tmp_path, capsys):
    from voxcause.cli.main import main

    manifest = tmp_path / "m.csv"
    manifest.write_text("image\nmissing.nii.gz\n")
    code = main(["batch", str(manifest), "--model", str(real_cohort["model"]), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "row 1: image 'missing.nii.gz' not found" in err[0] and "fix the path" in err[0]
