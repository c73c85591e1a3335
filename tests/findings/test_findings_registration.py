"""Registration to MNI recovers a known rigid transform; a scan that is not a brain fails and is reported."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from findings_casework import blob_at, needs_atlas, subject, template_path, write_case
from voxcause.findings import make_findings
from voxcause.findings.registration import register_to_template

pytestmark = needs_atlas


def _tre(found: sitk.Transform, true: sitk.Transform, image: sitk.Image) -> np.ndarray:
    """Distance (mm) between where the found and the true transform send brain voxels."""
    idx = np.argwhere(sitk.GetArrayViewFromImage(image) > 0)[::40]
    pts = [image.TransformIndexToPhysicalPoint(tuple(int(v) for v in i[::-1])) for i in idx]
    return np.array([np.linalg.norm(np.subtract(found.TransformPoint(p), true.TransformPoint(p))) for p in pts])


@pytest.mark.slow
def test_shifted_rotated_brain_is_registered_back():
    # subject point -> MNI point: rotations of 9, -6 and 11 degrees and a (10, -8, 6) mm shift
    true = sitk.Euler3DTransform((0, -18, 18), np.deg2rad(9), np.deg2rad(-6), np.deg2rad(11), (10, -8, 6))
    img = subject(2.0, true)
    tmpl = sitk.ReadImage(str(template_path()), sitk.sitkFloat32)
    reg = register_to_template(img, tmpl, seed=0)
    assert reg.quality == "good" and reg.ncc > 0.9
    err = _tre(reg.transform, true, img)
    assert err.mean() < 1.0 and err.max() < 2.0  # mm
    det = np.linalg.det(np.array(reg.transform.GetMatrix()).reshape(3, 3))
    assert det == pytest.approx(1.0, abs=0.03)


def test_noise_is_not_a_brain_and_registration_fails_cleanly():
    rng = np.random.default_rng(0)
    img = sitk.GetImageFromArray(rng.random((40, 40, 40)).astype(np.float32) + 1.0)
    img.SetSpacing((3.0, 3.0, 3.0))
    img.SetOrigin((-60.0, -60.0, -60.0))
    tmpl = sitk.ReadImage(str(template_path()), sitk.sitkFloat32)
    reg = register_to_template(img, tmpl, seed=0, iterations=30)
    assert reg.quality == "failed" and reg.transform is None
    assert "atlas region names were skipped" in reg.message or "did not converge" in reg.message


@pytest.mark.slow
def test_findings_register_a_moved_scan_and_name_the_lesion(tmp_path):
    true = sitk.Euler3DTransform((0, -18, 18), np.deg2rad(-7), np.deg2rad(5), np.deg2rad(8), (-9, 7, -5))
    img = subject(2.0, true)
    amap = blob_at(img, (-10, -18, 8), radius_mm=4.0, transform=true)  # left thalamus in MNI
    f = make_findings(write_case(tmp_path / "moved", img, amap), atlas="harvard-oxford")
    reg = f["atlas"]["registration"]
    assert reg["performed"] and reg["quality"] == "good"
    assert f["regions"][0]["name"] == "Left Thalamus"
    assert f["components"][0]["centroid_mni_ras_mm"] == pytest.approx([-10, -18, 8], abs=1.5)
