"""Components in physical units: ml from spacing, RAS centroids from an LPS geometry, Dice."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from voxcause.errors import InputError
from voxcause.evaluate.metrics import dice
from voxcause.findings.components import describe_components, index_to_ras, lps_to_ras


def _reference(shape_zyx, spacing=(2.0, 2.0, 2.0), origin=(90.0, 126.0, -72.0),
               direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1)):
    img = sitk.Image(list(shape_zyx[::-1]), sitk.sitkFloat32)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(direction)
    return img


def test_volume_centroid_peak_and_mass():
    ref = _reference((20, 30, 40), spacing=(2.0, 1.5, 3.0))
    amap = np.zeros((20, 30, 40), np.float32)
    amap[2:6, 4:8, 10:14] = 1.0  # 64 voxels of 2 x 1.5 x 3 = 9 mm^3 -> 0.576 ml
    amap[3, 5, 11] = 2.0
    amap[15:17, 20:22, 30:32] = 0.5  # 8 voxels
    comps = describe_components(amap > 0, amap, ref)
    assert [c.voxels for c in comps] == [64, 8]
    assert comps[0].volume_ml == pytest.approx(0.576)
    # centre index (z, y, x) = (3.5, 5.5, 11.5) -> LPS x = 90 - 11.5*2, y = 126 - 5.5*1.5, z = -72 + 3.5*3
    assert comps[0].centroid_ras_mm == pytest.approx([-(90 - 23.0), -(126 - 8.25), -72 + 10.5])
    assert comps[0].peak_ras_mm == pytest.approx(index_to_ras(ref, (3, 5, 11)))
    total = 63 + 2.0 + 8 * 0.5
    assert comps[0].attribution_fraction == pytest.approx(65 / total)
    assert comps[1].attribution_fraction == pytest.approx(4 / total)


def test_lps_ras_flip_is_its_own_inverse():
    assert lps_to_ras((1.0, -2.0, 3.0)) == [-1.0, 2.0, 3.0]
    assert lps_to_ras(lps_to_ras((4.0, 5.0, 6.0))) == [4.0, 5.0, 6.0]


def test_dice_values_and_shape_check():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:5] = True
    b[2:7] = True
    assert dice(a, b) == pytest.approx(2 * 30 / 100)
    assert dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    with pytest.raises(InputError, match="resample"):
        dice(a, np.zeros((10, 11), bool))
