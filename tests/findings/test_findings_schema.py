"""The findings JSON schema: a real document validates; malformed ones are rejected with a useful message."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
import SimpleITK as sitk
from voxcause.errors import InputError
from voxcause.findings import SCHEMA_VERSION, make_findings, read_findings, schema, validate_findings, write_findings


@pytest.fixture(scope="module")
def findings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("case")
    img = sitk.GetImageFromArray(np.pad(np.ones((20, 20, 20), np.float32), 5))
    img.SetSpacing((1.5, 1.5, 1.5))
    sitk.WriteImage(img, str(folder / "t1.nii.gz"))
    amap = np.zeros((30, 30, 30), np.float32)
    amap[10:14, 12:16, 8:12] = 1.0
    m = sitk.GetImageFromArray(amap)
    m.CopyInformation(img)
    sitk.WriteImage(m, str(folder / "map.nii.gz"))
    (folder / "summary.json").write_text(json.dumps({
        "method": "occlusion", "target": {"index": 0, "label": "a"}, "score": 0.7, "forward_passes": 64,
        "seconds": 0.4, "device": "cpu", "version": "0.1.0", "input": "t1.nii.gz", "model": "toy.onnx",
        "p_orig": 0.7, "p_remove": 0.1, "p_only": 0.6, "delta_drop": 0.6, "delta_focus": 0.6}))
    f = make_findings(folder, atlas=None)
    write_findings(folder, f)
    return folder, f


def test_real_findings_validate_and_round_trip(findings):
    folder, f = findings
    assert f["schema_version"] == SCHEMA_VERSION and schema()["$id"].endswith(f"{SCHEMA_VERSION}.json")
    assert read_findings(folder)["mask"] == f["mask"]
    assert f["mask"]["voxels"] == 64 and f["mask"]["volume_ml"] == pytest.approx(64 * 1.5**3 / 1000, abs=1e-3)
    assert f["input"]["paths"][0].endswith("t1.nii.gz")  # relative input resolved against the folder
    assert f["counterfactual"]["delta_drop"] == 0.6
    assert f["atlas"] == {"name": None, "used": False, "skipped_reason": "no atlas was requested"}


@pytest.mark.parametrize("breakage, where", [
    (lambda f: f.pop("mask"), "(top level)"),
    (lambda f: f["mask"].__setitem__("fraction_of_foreground", 1.5), "mask/fraction_of_foreground"),
    (lambda f: f["mask"].__setitem__("volume", 3.0), "mask"),  # a key without its unit
    (lambda f: f.__setitem__("schema_version", "2.0.0"), "schema_version"),
    (lambda f: f["components"][0].__setitem__("centroid_ras_mm", [1.0]), "components/0/centroid_ras_mm"),
    (lambda f: f["regions"].append({"name": "X", "label": 1, "hemisphere": "north", "voxels_in_mask": 1,
                                    "volume_in_mask_ml": 0.1, "fraction_of_mask": 0.1, "fraction_of_region": 0.1,
                                    "attribution_fraction": 0.1}), "regions/0/hemisphere"),
    (lambda f: f["provenance"].__setitem__("map_sha256", "abc"), "provenance/map_sha256"),
])
def test_malformed_findings_are_rejected(findings, breakage, where):
    bad = copy.deepcopy(findings[1])
    breakage(bad)
    with pytest.raises(InputError, match=re.escape(f"schema {SCHEMA_VERSION} at {where}:")):
        validate_findings(bad)


def test_missing_outputs_are_bad_input(tmp_path):
    with pytest.raises(InputError, match="no summary.json; run `voxcause explain"):
        make_findings(tmp_path)
    with pytest.raises(InputError, match="no findings.json"):
        read_findings(tmp_path)


def test_a_summary_that_breaks_its_schema_is_named_not_half_read(findings, tmp_path):
    """Readers check summary.json against summary.schema.json instead of a hand list of keys."""
    from voxcause.explanation import read_summary

    folder, _ = findings
    (tmp_path / "map.nii.gz").write_bytes((folder / "map.nii.gz").read_bytes())
    (tmp_path / "summary.json").write_text(json.dumps({"schema": "voxcause-summary", "method": "rex"}))
    with pytest.raises(InputError, match=r"does not match the summary schema .* at \(top level\): 'schema_version'"):
        make_findings(tmp_path, atlas=None)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(InputError, match="is not valid JSON"):
        read_summary(tmp_path / "summary.json")
    assert not (tmp_path / "findings.json").exists()


def test_explanation_keeps_the_methods_blocks_the_summary_schema_leaves_open(findings, tmp_path):
    """The findings' "explanation" takes the method's settings and the blocks summary.schema.json does not
    declare; the declared run record (volumes, warnings, stats, ...) and the counterfactual stay out of it."""
    folder, _ = findings
    for name in ("map.nii.gz", "t1.nii.gz"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    summary = json.loads((folder / "summary.json").read_text())
    summary.update(params={"iterations": 3}, sufficient={"voxels": 12}, seed=4, warnings=["w"],
                   volumes={"map": "map.nii.gz"}, stats={"seconds": {"search": 0.1}})
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    explanation = make_findings(tmp_path, atlas=None)["explanation"]
    assert explanation == {"method": "occlusion", "forward_passes": 64, "seconds": 0.4, "device": "cpu",
                           "params": {"iterations": 3}, "sufficient": {"voxels": 12}, "seed": 4}
