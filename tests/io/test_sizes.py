"""One size for one explanation: image voxels and millilitres in the overview, the terminal and the report."""

from __future__ import annotations

import numpy as np
from voxcause.outputs import size_text


def test_sizes_are_image_voxels_and_physical_units():
    mask = np.zeros((10, 10, 10), bool)
    mask[:2, :5, :5] = True  # 50 voxels of 2 x 1 x 1 mm = 0.1 ml
    assert size_text(mask, (2.0, 1.0, 1.0)) == "50 image voxels (0.10 ml)"
    assert size_text(mask[0], (0.5, 0.5)) == "25 image voxels (6.2 mm²)"
