"""Every saliency method on known-cause models (2D and 3D; classifier and segmenter).

The shared checks: shape and dtype on the model grid, determinism, the positive mass concentrates in the
(1-voxel dilated) cause and ignores the same-brightness decoy, no hook left behind. Where a method fails
by design the failure is asserted as a fact (occlusion on a disjunctive cause).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from voxcause.fusion import DualEvidence
from voxcause.models import as_model
from voxcause.saliency import GradCAM, GradCAMPlusPlus, LayerCAM, Occlusion, ScoreCAM, SegGradCAM
from voxcause.saliency._hooks import hook_count
from voxcause.testing import (
    CauseClassifier,
    CauseSegmenter,
    class_target,
    make_conv_case,
    positive_share,
    region_target,
)

CELL = {2: 5, 3: 4}  # occlusion cells: 64 regions on the 40x40 / 16^3 cases

# (method, constructor options (per nd where a dict), minimum mass in the dilated cause per nd).
# Occlusion is only as sharp as its cells: in 3D the ball (radius 2 at voxel 4) straddles eight 4^3 cells, so
# at most ~1/4 of its mass can land on the cause (measured 0.25 / 0.24) -- asserted, not hidden. dea keeps the
# gradient's detail inside those cells (measured 0.94 / 0.68 in 3D).
METHODS = [
    (GradCAM, {}, {2: 0.99, 3: 0.99}),
    (GradCAMPlusPlus, {}, {2: 0.99, 3: 0.99}),
    (LayerCAM, {}, {2: 0.99, 3: 0.99}),
    (ScoreCAM, {}, {2: 0.99, 3: 0.99}),
    (Occlusion, {"cell": CELL}, {2: 0.9, 3: 0.2}),
    (DualEvidence, {"cell": CELL, "n_noise": 2}, {2: 0.95, 3: 0.6}),
]


def _options(options: dict, nd: int) -> dict:
    return {k: (v[nd] if isinstance(v, dict) else v) for k, v in options.items()}


def _setup(task: str, nd: int):
    x, cause, decoy = make_conv_case(nd)
    if task == "classification":
        net = CauseClassifier(nd)
        return net, x, class_target(1), cause, decoy
    net = CauseSegmenter(nd)
    region = net(x).argmax(1)[0].bool()
    return net, x, region_target(1, region), cause, decoy


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("task", ["classification", "segmentation"])
@pytest.mark.parametrize(("cls", "options", "minimum"), METHODS, ids=[m[0].__name__ for m in METHODS])
def test_mass_concentrates_in_the_cause(cls, options, minimum, task, nd):
    net, x, target, cause, decoy = _setup(task, nd)
    explainer = cls(net, **_options(options, nd))
    result = explainer.attribute(x, target=target)
    amap = result.map
    assert tuple(amap.shape) == tuple(x.shape[2:])
    assert amap.dtype == torch.float32
    grown = ndimage.binary_dilation(cause)
    assert positive_share(amap, grown) >= minimum[nd]
    assert positive_share(amap, decoy) <= 0.01  # the decoy the model ignores gets nothing
    peak = np.unravel_index(int(amap.argmax()), amap.shape)
    assert grown[peak] or cls is Occlusion  # the maximum is on the cause: the map is not flipped
    assert amap[torch.from_numpy(grown)].max() == amap.max()  # (occlusion: a cell holding the cause)
    assert hook_count(net) == 0
    again = cls(net, **_options(options, nd)).attribute(x, target=target).map
    assert torch.equal(amap, again)  # deterministic


@pytest.mark.parametrize("nd", [2, 3])
def test_cam_layer_reported_and_maps_nonnegative(nd):
    net, x, target, _, _ = _setup("classification", nd)
    for cls in (GradCAM, GradCAMPlusPlus, ScoreCAM):
        result = cls(net).attribute(x, target=target)
        assert result.stats["layer"] == "features"  # the deepest block keeping 1/8 of the resolution
        assert result.stats["layer_automatic"] is True
        assert float(result.map.min()) >= 0


def test_segmenter_skips_its_prediction_head():
    net, x, target, _, _ = _setup("segmentation", 3)
    # The block the head reads (features: conv1 -> conv2 + ReLU), found from the execution order.
    assert GradCAM(net).attribute(x, target=target).stats["layer"] == "features"
    assert SegGradCAM(net).attribute(x, target=target).stats["layer"] == "features"


def test_pass_counts():
    net, x, target, _, _ = _setup("classification", 3)
    grad = GradCAM(net).attribute(x, target=target).stats
    assert (grad["forward_passes"], grad["backward_passes"]) == (2, 1)  # layer probe + the pass itself
    assert GradCAM(net, layer="features.conv2").attribute(x, target=target).stats["forward_passes"] == 1
    score = ScoreCAM(net, batch_size=3).attribute(x, target=target).stats
    assert score["backward_passes"] == 0
    assert score["forward_passes"] == 1 + 1 + 1 + score["channels_used"]  # probe, activations, baseline, masks
    occ = Occlusion(net, cell=4, batch_size=16).attribute(x, target=target).stats
    assert occ["n_regions"] == 64
    assert occ["forward_passes"] == 1 + 64
    assert occ["forward_calls"] == 1 + 4  # one call per batch of regions, not one per window


def test_occlusion_sliding_and_supervoxels():
    net, x, target, cause, _ = _setup("classification", 2)
    sliding = Occlusion(net, cell=6, stride=3).attribute(x, target=target)
    assert sliding.stats["regions"] == "sliding"
    assert positive_share(sliding.map, ndimage.binary_dilation(cause, iterations=3)) >= 0.8
    supervoxels = Occlusion(net, regions="supervoxels", n_segments=64).attribute(x, target=target)
    assert supervoxels.stats["regions"] == "supervoxels"
    assert positive_share(supervoxels.map, ndimage.binary_dilation(cause, iterations=3)) >= 0.8


def test_occlusion_misses_a_disjunctive_cause():
    """Recorded failure: either ball alone keeps the max-pooled logit, so hiding one changes nothing."""
    x, cause, _ = make_conv_case(3, disjunctive=True)
    net = CauseClassifier(3, pool="max")
    occ = Occlusion(net, cell=4).attribute(x, target=class_target(1)).map
    probs = torch.softmax(net(torch.cat([x, torch.where(torch.from_numpy(cause), 0.0, x)])), 1)[:, 1]
    both_removed_drop = float(probs[0] - probs[1])
    assert both_removed_drop > 0.5  # the two balls together are the cause ...
    assert float(occ.abs().max()) < 0.02 * both_removed_drop  # ... yet occlusion sees (almost) nothing anywhere
    grad = GradCAM(net).attribute(x, target=class_target(1)).map
    first = ndimage.binary_dilation(make_conv_case(3)[1])
    # Grad-CAM's channel weight is a spatial mean, so the max-pool head still weighs the whole cause channel:
    # it splits the mass between both balls (measured 0.51 / 0.49).
    first = ndimage.binary_dilation(make_conv_case(3)[1])
    second = ndimage.binary_dilation(cause) & ~first
    assert positive_share(grad, first) >= 0.4 and positive_share(grad, second) >= 0.4


def test_dea_reports_its_parts():
    net, x, target, cause, _ = _setup("segmentation", 2)
    result = DualEvidence(net, cell=5, n_noise=2).attribute(x, target=target)
    for name in ("gradient", "intervention", "stability", "agreement", "weight"):
        part = result.details[name]
        assert tuple(part.shape) == tuple(x.shape[2:])
        assert float(part.min()) >= 0.0 and float(part.max()) <= 1.0 + 1e-6
    assert result.stats["backward_passes"] == 3  # clean + 2 noisy copies
    assert result.stats["forward_passes"] == 2 + 2 + 1 + 64  # 3 CAM passes + probe, occlusion 1 + 64 regions
    grown = ndimage.binary_dilation(cause)
    assert positive_share(result.map, grown) >= positive_share(result.details["intervention"], grown)


def test_progress_reaches_one():
    net, x, target, _, _ = _setup("classification", 2)
    for explainer in (GradCAM(net), ScoreCAM(net, batch_size=2), Occlusion(net, cell=10), DualEvidence(net, cell=10)):
        events = []
        explainer.attribute(x, target=target, progress=lambda stage, f, events=events: events.append(f))
        assert events and events[-1] == 1.0
        assert all(0.0 <= f <= 1.0 for f in events)


def test_torchscript_model_gets_occlusion_only():
    net, x, target, cause, _ = _setup("classification", 2)
    scripted = as_model(torch.jit.script(net))
    result = Occlusion(scripted, cell=5).attribute(x, target=target)
    assert positive_share(result.map, ndimage.binary_dilation(cause)) >= 0.45
    assert not math.isnan(float(result.map.sum()))
