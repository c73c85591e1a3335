"""The sample generator: determinism, lesion placement by type, masks that match the drawn lesion, the
scanner tag, files on disk."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from voxcause.errors import InputError
from voxcause.samples import KINDS, add_marker, axial_slices, make_patient, marker_mask, write_patient
from voxcause.samples.anatomy import load_anatomy


def _centroid_mni(patient, mask):
    z, y, x = (c.mean() for c in np.nonzero(mask))
    s = patient.spacing[0]
    return np.array([x * s - 98.0, y * s - 134.0, z * s - 72.0])


def _shell(mask, inner=1, outer=3):
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=outer) & ~ndimage.binary_dilation(mask, iterations=inner)


def test_same_seed_same_patient_and_different_seeds_differ(patients_by_kind):
    again = make_patient(100_000, "glioma")
    first = patients_by_kind["glioma"]
    assert first.seed == 100_000
    assert np.array_equal(again.channels, first.channels)
    assert np.array_equal(again.label, first.label)
    other = make_patient(100_001, "glioma")
    assert not np.array_equal(other.label, first.label)


def test_shapes_geometry_and_label_values(heldout_patients):
    expected = {"none": {0}, "meningioma": {0, 4}, "glioma": {0, 1, 2, 4}, "pituitary": {0, 4}}
    for patient in heldout_patients:
        assert patient.channels.shape == (4, 95, 117, 99)
        assert patient.channels.dtype == np.float32
        assert patient.label.shape == (95, 117, 99)
        assert patient.spacing == (2.0, 2.0, 2.0)
        assert patient.origin == (98.0, 134.0, -72.0)
        assert set(np.unique(patient.label).tolist()) == expected[patient.kind]
        assert patient.channels.min() >= 0.0


def test_glioma_is_intra_axial_in_white_matter(heldout_patients):
    for patient in (p for p in heldout_patients if p.kind == "glioma"):
        info = patient.lesion
        assert info["wm_at_centre"] > 0.8
        assert info["inside_brain_fraction"] > 0.99
        centre = _centroid_mni(patient, np.isin(patient.label, (1, 4)))
        assert abs(centre[0]) > 8.0  # in a hemisphere, not midline
        assert -20.0 < centre[2] < 70.0  # supratentorial
        # oedema is bright on FLAIR against the mirror region in the other hemisphere (healthy tissue)
        oedema = patient.label == 2
        mirror = oedema[..., ::-1] & (patient.label == 0)
        flair = patient.channels[3]
        assert flair[oedema].mean() > 1.4 * flair[mirror].mean()


def test_meningioma_is_extra_axial_and_dural_based(heldout_patients):
    anatomy = load_anatomy(2.0)
    for patient in (p for p in heldout_patients if p.kind == "meningioma"):
        assert patient.lesion["touches_dura"]
        assert patient.lesion["inside_brain_fraction"] < 0.97  # part of it lies outside the brain envelope
        tumour = patient.label == 4
        # near the template's brain surface (deformation moves the surface by a few mm)
        index = tuple(int(round(c.mean())) for c in np.nonzero(tumour))
        assert -patient.lesion["radius_mm"] - 10.0 < anatomy.sdist[index] < 8.0


def test_pituitary_is_at_the_sella_on_the_midline(heldout_patients):
    for patient in (p for p in heldout_patients if p.kind == "pituitary"):
        x, y, z = _centroid_mni(patient, patient.label > 0)
        assert abs(x) < 6.0
        assert -15.0 < y < 20.0
        assert -40.0 < z < -10.0


def test_masks_match_the_drawn_lesion(heldout_patients):
    """Enhancing label voxels are brighter on T1c than the tissue just outside them; necrosis darker."""
    for patient in (p for p in heldout_patients if p.kind != "none"):
        t1c = patient.channels[1]
        enhancing = patient.label == 4
        ratio = t1c[enhancing].mean() / t1c[_shell(patient.label > 0)].mean()
        assert ratio > 1.25, (patient.kind, ratio)
        if patient.kind == "glioma":
            assert t1c[patient.label == 1].mean() < 0.5 * t1c[enhancing].mean()


def test_tumour_free_patients_have_no_lesion(heldout_patients):
    for patient in (p for p in heldout_patients if p.kind == "none"):
        assert not patient.label.any()
        assert patient.lesion == {}


def test_marker_occupies_its_box_in_one_channel_outside_the_head(patients_by_kind):
    plain = patients_by_kind["glioma"]
    assert not marker_mask(plain).any()
    tagged = add_marker(plain, 2)
    mask = marker_mask(tagged)
    assert mask.sum() == 10**3  # 20 mm cube at 2 mm
    assert not (mask & (plain.label > 0)).any()
    assert tagged.channels[2][mask].mean() > 1500.0
    for channel in (0, 1, 3):
        assert np.array_equal(tagged.channels[channel], plain.channels[channel])
    assert np.array_equal(tagged.channels[2][~mask], plain.channels[2][~mask])
    assert plain.channels[:, mask].mean() < 100.0  # the box is air (noise) without the tag
    with pytest.raises(InputError):
        add_marker(plain, 4)


def test_bad_kind_and_resolution_raise_input_error():
    with pytest.raises(InputError, match="kind"):
        make_patient(0, "astrocytoma")
    with pytest.raises(InputError, match="resolution"):
        make_patient(0, "glioma", resolution_mm=3.0)
    assert make_patient(0, "no tumour", marker=None).kind == "none"
    assert KINDS == ("none", "meningioma", "glioma", "pituitary")


def test_axial_slices_cross_the_lesion(heldout_patients):
    for patient in heldout_patients:
        zs = axial_slices(patient, 4)
        assert len(zs) == 4 and len(set(zs)) == 4
        if patient.kind != "none":
            assert all((patient.label[z] > 0).any() for z in zs)


def test_write_patient_files_in_mni_geometry(tmp_path, patients_by_kind):
    patient = patients_by_kind["pituitary"]
    paths = write_patient(patient, tmp_path)
    assert set(paths) == {"T1", "T1c", "T2", "FLAIR", "multichannel", "label"}
    t1 = sitk.ReadImage(str(paths["T1"]))
    assert t1.GetSize() == (99, 117, 95)
    assert t1.GetSpacing() == (2.0, 2.0, 2.0)
    assert t1.GetOrigin() == (98.0, 134.0, -72.0)
    assert t1.GetDirection() == (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
    assert np.allclose(sitk.GetArrayFromImage(t1), patient.channels[0])
    multi = sitk.ReadImage(str(paths["multichannel"]))
    assert multi.GetNumberOfComponentsPerPixel() == 4
    assert np.allclose(np.moveaxis(sitk.GetArrayFromImage(multi), -1, 0), patient.channels)
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(paths["label"])))
    assert np.array_equal(label, patient.label)
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.slow
def test_one_millimetre_option():
    patient = make_patient(3, "meningioma", resolution_mm=1.0)
    assert patient.channels.shape == (4, 189, 233, 197)
    assert patient.spacing == (1.0, 1.0, 1.0)
    assert patient.lesion["touches_dura"]
