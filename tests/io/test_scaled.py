"""Maps of a small model grid on a large image are stored as scaled int16: within half a step, far smaller."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import torch
from voxcause.io import write_image
from voxcause.io.scaled import SCALED_MIN_VOXELS, scaled_map, write_scaled_nifti


def test_only_maps_much_finer_than_the_model_grid_are_scaled():
    assert scaled_map((256, 256, 256), [24, 24, 24])
    assert not scaled_map((256, 256, 256), [168, 168, 168]), "near the model's grid: float32 as computed"
    assert not scaled_map((64, 64, 64), [8, 8, 8]), "small maps are small as float32 too"
    assert not scaled_map((256, 256, 256), None)


def test_an_upsampled_map_reads_back_within_half_a_step_and_is_much_smaller(tmp_path):
    generator = torch.Generator().manual_seed(0)  # a responsibility map: a few responsible parts, the rest small
    coarse = 0.001 + 0.01 * torch.rand(1, 1, 12, 12, 12, generator=generator)
    coarse[0, 0, 4:7, 5:8, 3:6] = torch.rand(3, 3, 3, generator=generator) + 0.5
    fine = torch.nn.functional.interpolate(coarse, size=(168, 168, 168), mode="trilinear")[0, 0].numpy()
    assert fine.size >= SCALED_MIN_VOXELS
    reference = sitk.Image(168, 168, 168, sitk.sitkFloat32)
    reference.SetSpacing((0.5, 0.6, 0.7))
    reference.SetOrigin((-10.0, 3.0, 7.0))
    reference.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    slope = write_scaled_nifti(fine, reference, tmp_path / "map.nii.gz")
    exact = write_image(fine, reference, tmp_path / "float.nii.gz")
    back = sitk.ReadImage(str(tmp_path / "map.nii.gz"))
    assert back.GetPixelID() == sitk.sitkFloat32, "readers apply scl_slope"
    assert np.abs(sitk.GetArrayFromImage(back) - fine).max() <= slope / 2 + 1e-6  # + float32 rounding
    for attribute in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection"):
        assert np.allclose(getattr(back, attribute)(), getattr(reference, attribute)(), atol=1e-6), attribute
    assert (tmp_path / "map.nii.gz").stat().st_size * 4 < exact.stat().st_size


def test_an_all_zero_map_stays_float(tmp_path):
    reference = sitk.Image(4, 4, 4, sitk.sitkFloat32)
    assert write_scaled_nifti(np.zeros((4, 4, 4), np.float32), reference, tmp_path / "map.nii.gz") is None
    assert sitk.ReadImage(str(tmp_path / "map.nii.gz")).GetPixelID() == sitk.sitkFloat32
