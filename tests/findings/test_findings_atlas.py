"""Atlas naming: lesions at known MNI coordinates get the right Harvard-Oxford region and hemisphere;
user atlases need names; an atlas in another space is refused when registration is off."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from findings_casework import blob_at, mni_grid, needs_atlas, subject, write_case
from voxcause.errors import InputError
from voxcause.findings import make_findings, validate_findings
from voxcause.findings.atlas import hemisphere_from_name, pretty_region_name, read_names_table, user_atlas

LESIONS = [  # MNI RAS mm -> (Harvard-Oxford region, hemisphere); each label holds >90% of a 7 mm cube there
    ((28, -22, -14), "Right Hippocampus", "right"),
    ((-10, -18, 8), "Left Thalamus", "left"),
    ((40, -18, 56), "Right Precentral Gyrus", "right"),
    ((0, -30, -30), "Brain-Stem", "midline"),
]


@pytest.fixture(scope="module")
def mni_subject():
    return subject(2.0)


@needs_atlas
def test_lesions_at_known_mni_coordinates_are_named(tmp_path, mni_subject):
    for k, (centre, name, side) in enumerate(LESIONS):
        amap = blob_at(mni_subject, centre, radius_mm=4.0)
        case = write_case(tmp_path / f"case{k}", mni_subject, amap)
        f = make_findings(case, atlas="harvard-oxford")
        validate_findings(f)
        assert f["atlas"]["used"] and f["atlas"]["registration"]["quality"] == "identity"
        top = f["regions"][0]
        assert (top["name"], top["hemisphere"]) == (name, side), f["regions"][:3]
        assert top["fraction_of_mask"] > 0.6
        assert f["components"][0]["centroid_ras_mm"] == pytest.approx(list(centre), abs=1.0)
        assert 0 < top["fraction_of_region"] < 1 and 0 < top["attribution_fraction"] <= 1


@needs_atlas
def test_image_not_in_mni_without_registration_is_bad_input(tmp_path, mni_subject):
    moved = sitk.Euler3DTransform((0, -18, 18), 0.15, -0.1, 0.2, (12, -9, 8))
    img = subject(2.0, moved)
    case = write_case(tmp_path / "moved", img, blob_at(img, (28, -22, -14), transform=moved))
    with pytest.raises(InputError, match="different spaces"):
        make_findings(case, atlas="harvard-oxford", register="never")


def _user_atlas(folder, origin=(90.0, 126.0, -72.0)):
    grid = mni_grid(2.0)
    grid.SetOrigin(origin)
    arr = np.zeros(sitk.GetArrayViewFromImage(grid).shape, np.int16)
    arr[:, :, : arr.shape[2] // 2] = 1  # low x index = LPS x near +90 = RAS x near -90: the left half
    arr[:, :, arr.shape[2] // 2:] = 2
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(grid)
    path = folder / "halves.nii.gz"
    sitk.WriteImage(img, str(path))
    return path


def test_user_atlas_with_names_table(tmp_path, mni_subject):
    path = _user_atlas(tmp_path)
    (tmp_path / "halves.tsv").write_text("index\tname\n1\tPart A\n2\tPart B\n")
    case = write_case(tmp_path / "case", mni_subject, blob_at(mni_subject, (30, 0, 10), radius_mm=5.0))
    f = make_findings(case, atlas=path)
    assert f["atlas"]["name"] == "halves.nii.gz" and f["atlas"]["used"]
    assert f["regions"][0]["name"] == "Part B"
    assert f["regions"][0]["hemisphere"] == "right"  # from the label's centroid (x > 5 mm RAS)
    assert f["regions"][0]["fraction_of_mask"] == pytest.approx(1.0)


def test_user_atlas_without_names_is_bad_input(tmp_path):
    path = _user_atlas(tmp_path)
    with pytest.raises(InputError, match="no names table"):
        user_atlas(path)
    (tmp_path / "halves.csv").write_text("index,name\n1,East side\n")
    with pytest.raises(InputError, match=r"no name for label\(s\) \[2\]"):
        user_atlas(path)


def test_user_atlas_in_another_space_is_bad_input(tmp_path, mni_subject):
    path = _user_atlas(tmp_path, origin=(900.0, 1260.0, 500.0))
    (tmp_path / "halves.csv").write_text("1,East side\n2,West side\n")
    case = write_case(tmp_path / "case", mni_subject, blob_at(mni_subject, (30, 0, 10)))
    with pytest.raises(InputError, match="not in the same space"):
        make_findings(case, atlas=path)


def test_names_helpers(tmp_path):
    assert pretty_region_name("Left_Superior_Temporal_Gyrus_posterior_division") == \
        "Left Superior Temporal Gyrus, posterior division"
    assert pretty_region_name("Right_Inferior_Frontal_Gyrus_pars_opercularis") == \
        "Right Inferior Frontal Gyrus, pars opercularis"
    assert [hemisphere_from_name(n) for n in ("Left_Putamen", "rh.insula", "Brain-Stem", "Caudate_R")] == \
        ["left", "right", None, "right"]
    table = tmp_path / "t.txt"
    table.write_text("1 Frontal pole\n2 Occipital pole\n")
    assert read_names_table(table) == {1: "Frontal pole", 2: "Occipital pole"}
