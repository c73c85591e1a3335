"""`voxcause findings DIR` through its own parser (add_parser/run), as the main CLI calls it."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import SimpleITK as sitk
from voxcause.cli import findings as cli
from voxcause.errors import InputError


def _parse(argv):
    parser = argparse.ArgumentParser(prog="voxcause")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_writes_findings_and_emits_json_progress(tmp_path, capsys):
    img = sitk.GetImageFromArray(np.pad(np.ones((16, 16, 16), np.float32), 4))
    sitk.WriteImage(img, str(tmp_path / "t1.nii.gz"))
    amap = np.zeros((24, 24, 24), np.float32)
    amap[8:12, 8:12, 8:12] = 2.0
    m = sitk.GetImageFromArray(amap)
    m.CopyInformation(img)
    sitk.WriteImage(m, str(tmp_path / "map.nii.gz"))
    (tmp_path / "summary.json").write_text(json.dumps({"method": "rex", "target": {"index": 1, "label": "x"},
                                                       "score": 0.8, "input": str(tmp_path / "t1.nii.gz")}))
    args = _parse(["findings", str(tmp_path), "--atlas", "none", "--progress", "json"])
    assert args.run(args) == 0
    out, err = capsys.readouterr()
    assert "0.1 ml in 1 part(s)" in out
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert events[-1] == {"event": "done", "out": str(tmp_path)}
    assert any(e["event"] == "progress" for e in events)
    assert json.loads((tmp_path / "findings.json").read_text(encoding="utf-8"))["mask"]["voxels"] == 64


def test_cli_bad_folder_is_input_error(tmp_path):
    args = _parse(["findings", str(tmp_path / "nope"), "--atlas", "none"])
    with pytest.raises(InputError, match="no summary.json"):
        args.run(args)
