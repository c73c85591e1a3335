"""Adaptive percentile thresholding on maps whose right answer is known (sizes, percentiles, fallbacks)."""

from __future__ import annotations

import numpy as np
import pytest
from voxcause.errors import InputError
from voxcause.findings.components import clean_mask
from voxcause.findings.thresholding import adaptive_threshold, foreground_mask, largest_component_share
from voxcause.testing import ball


def _gauss(shape, centre, sigma):
    zz, yy, xx = np.indices(shape)
    return np.exp(-((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2) / (2 * sigma**2))


def test_compact_cube_is_recovered_exactly():
    rng = np.random.default_rng(0)
    amap = 0.01 * rng.random((40, 40, 40)).astype(np.float32)
    amap[10:16, 20:26, 5:11] = 1.0  # 216 voxels = 0.34% of the grid
    res = adaptive_threshold(amap)
    assert res.rule == "plausible_single"
    assert res.mask.sum() == 216
    assert res.mask[10:16, 20:26, 5:11].all()
    # the top 0.5% (320 voxels) would reach into the noise; the half-maximum cut (rank 99.66) is chosen
    assert res.threshold == pytest.approx(0.5)
    assert res.percentile == pytest.approx(100 * (1 - 216 / 40**3), abs=1e-3)
    assert [r["percentile"] for r in res.tried] == sorted((r["percentile"] for r in res.tried), reverse=True)


def test_gaussian_blob_gives_about_the_half_maximum_ball():
    sigma = 4.0
    amap = _gauss((48, 48, 48), (24, 24, 24), sigma).astype(np.float32)
    res = adaptive_threshold(amap)
    # the half-maximum ball has radius sigma*sqrt(2 ln 2) = 4.71 voxels -> 438 voxels
    r_half = sigma * np.sqrt(2 * np.log(2))
    expected = 4 / 3 * np.pi * r_half**3
    assert res.rule == "plausible_single"
    assert 0.45 <= res.threshold <= 0.5  # half of the (box-mean) peak
    assert 0.95 * expected <= res.mask.sum() <= 1.25 * expected


def test_three_equal_blobs_fall_back_to_plausible_size():
    shape = (40, 40, 60)
    amap = sum(_gauss(shape, (20, 20, x), 2.0) for x in (10, 30, 50)).astype(np.float32)
    res = adaptive_threshold(amap)
    assert res.rule == "plausible_size"
    assert largest_component_share(res.mask) == pytest.approx(1 / 3, abs=0.02)


def test_flat_map_gives_an_empty_mask():
    res = adaptive_threshold(np.full((20, 20, 20), 0.3, np.float32))
    assert res.rule == "flat_map" and not res.mask.any() and res.percentile is None
    assert adaptive_threshold(np.zeros((20, 20, 20), np.float32)).rule == "flat_map"


def test_half_the_volume_hot_is_nearest_size():
    amap = np.zeros((20, 20, 20), np.float32)
    amap[:10] = 1.0  # a plateau over 50% of the grid: no percentile can cut it below 15%
    res = adaptive_threshold(amap)
    assert res.rule == "nearest_size"
    assert res.mask.sum() == 4000


def test_only_the_foreground_counts():
    amap = np.zeros((30, 30, 30), np.float32)
    amap[0:3, 0:3, 0:3] = 5.0  # outside the brain: ignored
    amap[14:18, 14:18, 14:18] = 1.0
    fg = ball(amap.shape, (15, 15, 15), 12)
    res = adaptive_threshold(amap, foreground=fg)
    assert not res.mask[0:3, 0:3, 0:3].any()
    assert res.mask.sum() == 64


def test_shape_mismatch_and_bad_bounds_are_input_errors():
    with pytest.raises(InputError, match="foreground mask shape"):
        adaptive_threshold(np.ones((4, 4, 4)), foreground=np.ones((4, 4, 5), bool))
    with pytest.raises(InputError, match="min_fraction"):
        adaptive_threshold(np.ones((4, 4, 4)), min_fraction=0.5, max_fraction=0.1)


def test_foreground_zero_background_and_noisy_background():
    img = np.zeros((1, 30, 30, 30), np.float32)
    sphere = ball((30, 30, 30), (15, 15, 15), 8)
    img[0][sphere] = 100.0
    assert (foreground_mask(img) == sphere).all()
    noisy = np.random.default_rng(1).normal(5, 1, (1, 30, 30, 30)).astype(np.float32)
    noisy[0][sphere] += 100.0
    noisy[0][15, 15, 15] = 0.0  # a dark hole inside is filled
    assert (foreground_mask(noisy) == sphere).all()


def test_clean_mask_drops_specks_and_keeps_a_second_real_region():
    mask = np.zeros((30, 30, 30), bool)
    mask[5:15, 5:15, 5:15] = True  # 1000 voxels
    mask[20:25, 20:25, 20:25] = True  # 125 voxels: 12.5% of the largest -> kept
    mask[28, 28, 28] = True  # a speck
    out = clean_mask(mask)
    assert out.sum() == 1125 and not out[28, 28, 28]
