"""Display levels: nested rank bands, non-empty, the top band on the most responsible voxels (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from voxcause import explain
from voxcause.levels import level_thresholds, responsibility_levels
from voxcause.outputs import explanation_segments
from voxcause.testing import loaded, make_case, volume_of


def test_bands_are_nested_rank_shares_that_shrink_geometrically():
    values = np.random.default_rng(0).permutation(np.arange(1, 100_001, dtype=float))
    bands = responsibility_levels(values, 5)
    counts = [int((bands >= level).sum()) for level in range(1, 6)]
    assert counts == [50_000, 20_000, 8_000, 3_200, 1_280]
    top = bands == 5
    assert values[top].min() >= values[~top].max()  # the top band is the most responsible voxels


def test_a_map_spanning_many_decades_paints_only_what_is_within_a_millionth_of_its_peak():
    values = 64.0 ** -np.random.default_rng(1).uniform(0, 8, 100_000)  # eight levels of causal refinement
    bands = responsibility_levels(values, 5)
    painted = bands > 0
    assert values[painted].min() >= 1e-6 and not (bands[values < 1e-6]).any()
    counts = [int((bands >= level).sum()) for level in range(1, 6)]
    assert counts[0] == round(0.5 * int((values >= 1e-6).sum())) and counts[4] > 0


def test_every_band_is_non_empty_when_the_map_has_enough_distinct_values():
    values = np.zeros(1000)
    values[:6] = [1, 1, 2, 3, 9, 9]  # four distinct positive values, ties included
    bands = responsibility_levels(values, 5)
    assert [int((bands == level).sum()) for level in range(6)] == [994, 2, 1, 1, 2, 0]
    assert bands[4] == bands[5] == 4  # ties share a level
    values[:6] = [0, 1, 2, 3, 4, 5]  # exactly five distinct values: one per level
    assert responsibility_levels(values, 5)[:6].tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("values", [np.zeros(10), -np.ones(10), np.array([])])
def test_nothing_positive_gives_no_levels(values):
    assert not responsibility_levels(values, 5).any()
    assert level_thresholds(values, 5).size == 0


def test_levels_of_a_causal_map_are_not_one_blob_and_peak_on_the_cause():
    case = make_case("single", size=32, seed=0)
    result = explain(volume_of(case.image), model=loaded(case.model), seed=0)
    segments = {name: mask for name, mask, _ in explanation_segments(result)}
    levels = [segments[f"responsibility level {k}"] for k in range(1, 6)]
    sizes = [int(mask.sum()) for mask in levels]
    assert all(size > 0 for size in sizes)
    body = int((case.image[0] > 0).sum())
    assert sum(sizes) < 0.3 * body  # not half the body painted
    cause = ndimage.binary_dilation(case.causes[0], iterations=2)
    assert (levels[4] & cause).sum() == levels[4].sum()  # the hottest band lies on the cause
    assert not (levels[4] & case.decoys[0]).any()
