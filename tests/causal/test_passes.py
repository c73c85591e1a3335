"""Regression guard of the causal engine's cost and choices on known-cause models (fixed seeds): forward passes,
the canvas used and the verdict. A change to any of these numbers is a change of behaviour and must be meant
(and said in the commit); a refactor keeps them exactly."""

from __future__ import annotations

import pytest
from voxcause import explain
from voxcause.testing import loaded, make_case, make_edge_case, volume_of

CASES = {
    "single 3D, auto": (lambda: make_case("single", size=16, seed=0), {}, (246, "constant", "pass")),
    "segmenter 3D, forced min": (lambda: make_case("segmenter", size=16, seed=1), {"occlusion": "min"},
                                 (251, "min", "pass")),
    "edge reader 2D, auto": (lambda: make_edge_case(size=32, spatial_dims=2, seed=0), {}, (204, "mean", "pass")),
}


@pytest.mark.parametrize("name", CASES)
def test_passes_canvas_and_verdict_are_as_recorded(name):
    build, options, expected = CASES[name]
    case = build()
    result = explain(volume_of(case.image), model=loaded(case.model), seed=3, iterations=4, **options)
    seen = (result.stats["forward_passes"], result.stats["occlusion_used"], result.certificate["verdict"])
    assert seen == expected
    iterations = result.summary()["stats"]["iterations"]
    assert iterations["run"] <= iterations["most"] == 4 and iterations["stopped"] in ("converged", "limit")
