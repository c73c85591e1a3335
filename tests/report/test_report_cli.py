"""`voxcause report DIR` through its own parser (add_parser/run), as the main CLI calls it."""

from __future__ import annotations

import argparse
import json

import pytest
from voxcause.cli import report as cli
from voxcause.errors import InputError
from voxcause.report.llm import free_port


def _parse(argv):
    parser = argparse.ArgumentParser(prog="voxcause")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_report_computes_findings_and_never_fails_on_a_dead_llm(case_dir, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    args = _parse(["report", str(case_dir), "--atlas", "none", "--llm", url, "--llm-timeout", "3",
                   "--progress", "json"])
    assert args.run(args) == 0
    out, err = capsys.readouterr()
    assert "report (template)" in out
    assert "warning: LLM rewording not used (LLM backend" in err
    assert json.loads(err.strip().splitlines()[-1]) == {"event": "done", "out": str(case_dir)}
    record = json.loads((case_dir / "report.json").read_text(encoding="utf-8"))
    assert record["renderer"] == "template" and record["llm"]["accepted"] is False
    assert record["llm"]["reason"].startswith(f"LLM backend {url} unreachable") and record["warnings"]
    findings = json.loads((case_dir / "findings.json").read_text(encoding="utf-8"))
    assert findings["schema"] == "voxcause-findings" and findings["mask"]["volume_ml"] > 0
    markdown = (case_dir / "report.md").read_text(encoding="utf-8")
    volume = f"{findings['mask']['volume_ml']:.1f} ml"
    assert markdown.startswith("#") and volume in markdown  # the template states the findings' numbers
    page = (case_dir / "report.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and volume in page
    assert "data:image/png;base64," in page and 'src="http' not in page  # self-contained: pictures embedded


def test_cli_report_on_a_missing_folder_is_input_error(tmp_path):
    args = _parse(["report", str(tmp_path / "nope")])
    with pytest.raises(InputError, match="is not a folder"):
        args.run(args)
