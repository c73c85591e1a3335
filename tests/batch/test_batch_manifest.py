"""Manifest reading: columns, fallbacks to CLI options, ids, and the inputs that must fail in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from batch_casework import write_manifest
from voxcause.batch import read_manifest
from voxcause.errors import InputError


def test_columns_fallbacks_and_relative_paths(cohort, monkeypatch, tmp_path):
    data = cohort["data"]
    monkeypatch.chdir(tmp_path)  # relative paths are read from the manifest's folder, not the current one
    manifest = write_manifest(
        data / "m.csv",
        [
            {"Image": "case0.nii.gz", "id": "", "target": "2", "patient": "p1", "site": "A"},
            {"Image": "case1.nii.gz;case2.nii.gz", "id": "two channels", "target": "glioma", "patient": ""},
        ],
    )
    cases = read_manifest(manifest, model=str(cohort["model"]), patient="unknown", target=1)
    assert [case.id for case in cases] == ["case0", "two_channels"]
    assert cases[0].image == (str(data / "case0.nii.gz"),)
    assert cases[1].image == (str(data / "case1.nii.gz"), str(data / "case2.nii.gz"))
    assert cases[0].target == 2 and cases[1].target == "glioma"
    assert cases[0].model == str(cohort["model"]) and cases[0].mask is None
    assert [case.patient for case in cases] == ["p1", "unknown"]
    assert cases[0].extra == {"site": "A"} and cases[0].row == 1


def test_derived_ids_are_unique(cohort):
    data = cohort["data"]
    (data / "sub").mkdir()
    (data / "sub" / "case0.nii.gz").write_bytes((data / "case0.nii.gz").read_bytes())
    manifest = write_manifest(data / "m.csv", [{"image": "case0.nii.gz"}, {"image": "sub/case0.nii.gz"}])
    cases = read_manifest(manifest, model=str(cohort["model"]))
    assert [case.id for case in cases] == ["case0-1", "case0-2"]


BAD = [
    ("no image column", [{"file": "case0.nii.gz"}], {}, "no 'image' column"),
    ("missing image file", [{"image": "case0.nii.gz"}, {"image": "nope.nii.gz"}], {},
     "row 2: image 'nope.nii.gz' not found"),
    ("empty image cell", [{"image": "", "id": "a"}], {}, "row 1: the 'image' cell is empty"),
    ("no model", [{"image": "case0.nii.gz"}], {"model": None}, "no model — add a 'model' column or pass --model"),
    ("missing model", [{"image": "case0.nii.gz", "model": "gone.ts"}], {}, "model 'gone.ts' not found"),
    ("missing mask", [{"image": "case0.nii.gz", "mask": "gone.nii.gz"}], {}, "mask 'gone.nii.gz' not found"),
    ("duplicate id", [{"image": "case0.nii.gz", "id": "a"}, {"image": "case1.nii.gz", "id": "a"}], {},
     "repeats the id"),
    ("header only", [], {}, "has a header but no cases"),
]


@pytest.mark.parametrize(("name", "rows", "options", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_manifests_raise_one_line(cohort, name, rows, options, message):
    data = cohort["data"]
    path = data / "bad.csv"
    if rows:
        write_manifest(path, rows)
    else:
        path.write_text("image,id\n", encoding="utf-8")
    kwargs = {"model": str(cohort["model"]), **options}
    with pytest.raises(InputError) as caught:
        read_manifest(path, **kwargs)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text and " — " in text  # one line, naming the problem and the fix


def test_missing_manifest_file(tmp_path: Path):
    with pytest.raises(InputError, match="not found"):
        read_manifest(tmp_path / "none.csv", model="m.ts")
