"""Networks that normalise each image (issue 23): a constant canvas becomes all zeros after InstanceNorm, so only
a canvas that keeps the intensity statistics (the body's own voxels shuffled) removes the evidence; when no
canvas does, the answer is a quick, honest `fail`."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from voxcause import explain
from voxcause.testing import loaded, volume_of
from voxcause.testing.normalising import make_normalising_case


def test_an_instance_norm_network_is_explained_on_the_shuffled_canvas():
    case = make_normalising_case(size=24, seed=0)
    result = explain(volume_of(case.image), model=loaded(case.model), seed=0, iterations=4)
    cause = ndimage.binary_dilation(case.causes[0], iterations=2)
    positive = np.clip(result.map, 0, None)
    assert result.stats["occlusion_used"] == "shuffle"
    assert positive[cause].sum() / positive.sum() >= 0.9
    assert result.certificate["verdict"] == "pass", result.certificate


def test_a_decision_no_canvas_can_remove_fails_at_once_and_says_what_to_do():
    case = make_normalising_case(size=24, seed=0, bias=30.0)
    result = explain(volume_of(case.image), model=loaded(case.model), seed=0)
    assert result.certificate["verdict"] == "fail"
    assert "every canvas tried" in result.certificate["reason"] and "--occlusion PATH" in result.certificate["reason"]
    assert result.stats["forward_passes"] <= 60  # the probes of five canvases, no search
    assert result.stats["iterations"]["stopped"] == "undecidable" and not result.masks.get("sufficient")
    assert result.summary()["certificate"]["verdict"] == "fail"
