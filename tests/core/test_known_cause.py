"""Causal responsibility finds causes placed by construction (hand-set models), in 2D and 3D."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from voxcause import explain
from voxcause.testing import loaded, make_case, positive_share, volume_of

ITERATIONS = 10


def run(case, **options):
    options.setdefault("iterations", ITERATIONS)
    return explain(volume_of(case.image), model=loaded(case.model), seed=0, **options)


@pytest.mark.parametrize("spatial_dims,size", [(3, 32), (2, 48)])
def test_single_cause_beats_same_brightness_decoy(spatial_dims, size):
    case = make_case("single", size=size, spatial_dims=spatial_dims)
    result = run(case)
    cause = ndimage.binary_dilation(case.causes[0], iterations=2)
    assert positive_share(result.map, cause) > 0.6
    assert positive_share(result.map, case.decoys[0]) < 0.02
    assert cause.flat[int(np.argmax(result.map))]


def occlusion_map(case, window: int = 6) -> np.ndarray:
    """A plain sliding-window occlusion map (score drop when a cube is set to 0), for comparison."""
    import torch

    model = case.model
    image = torch.from_numpy(case.image)[None]
    with torch.no_grad():
        base = torch.softmax(model(image), 1)[0, 1]
        values = np.zeros(case.image.shape[1:], np.float32)
        counts = np.zeros_like(values)
        steps = [range(0, s - window + 1, window // 2) for s in values.shape]
        for corner in np.array(np.meshgrid(*steps, indexing="ij")).reshape(len(steps), -1).T:
            region = tuple(slice(c, c + window) for c in corner)
            hidden = image.clone()
            hidden[(slice(None), slice(None), *region)] = 0
            drop = float(base - torch.softmax(model(hidden), 1)[0, 1])
            values[region] += drop
            counts[region] += 1
    return values / np.maximum(counts, 1)


def test_disjunctive_cause_both_regions_responsible_where_occlusion_sees_nothing():
    case = make_case("disjunctive", size=32)
    result = run(case, iterations=30)
    shares = [positive_share(result.map, ndimage.binary_dilation(c, iterations=2)) for c in case.causes]
    # The multiplicative merge favours what every iteration finds, so one of two interchangeable causes can
    # get the larger share; both still hold a substantial part and together most of it.
    assert min(shares) > 0.1, shares
    assert sum(shares) > 0.5
    occlusion = occlusion_map(case)
    # Occluding either spot alone leaves the other: occlusion attributes (almost) nothing to either.
    assert max(float(occlusion[c].max()) for c in case.causes) < 0.05
    elsewhere = ~ndimage.binary_dilation(np.any(case.causes, axis=0), iterations=2)
    assert all(float(result.map[c].mean()) > 5 * float(result.map[elsewhere].mean()) for c in case.causes)


def test_conjunctive_cause_both_fully_responsible_under_the_formal_rule():
    case = make_case("conjunctive", size=32)
    result = run(case, rule="formal")
    shares = [positive_share(result.map, ndimage.binary_dilation(c, iterations=2)) for c in case.causes]
    assert min(shares) > 0.15, shares
    assert min(shares) / max(shares) > 0.5
    assert positive_share(result.map, case.decoys[0]) < 0.02


def test_single_sigmoid_logit_does_not_always_pass():
    case = make_case("sigmoid", size=32)
    model = loaded(case.model)
    result = explain(volume_of(case.image), model=model, seed=0, iterations=ITERATIONS)
    assert result.target["label"] == "positive"
    assert result.stats["failing_mutants"] > 0.3 * (result.stats["failing_mutants"] + result.stats["passing_mutants"])
    assert positive_share(result.map, ndimage.binary_dilation(case.causes[0], iterations=2)) > 0.6


def test_segmenter_region_explained_by_its_remote_cause():
    case = make_case("segmenter", size=32)
    result = run(case)
    assert result.target["kind"] == "region"
    assert result.masks["target_region"].sum() == case.segment.sum()
    cause = ndimage.binary_dilation(case.causes[0], iterations=2)
    assert positive_share(result.map, cause) > 0.6
    assert positive_share(result.map, case.segment) < 0.05


def test_multichannel_input_occluded_together_and_cause_found():
    case = make_case("single", size=32, channels=4, cause_channel=1)
    result = run(case)
    assert result.volume.channels == 4
    assert positive_share(result.map, ndimage.binary_dilation(case.causes[0], iterations=2)) > 0.6


def test_sufficient_keeps_class_and_is_small_contrastive_flips_when_removed():
    import torch

    case = make_case("single", size=32)
    result = run(case)
    sufficient, contrastive = result.masks["sufficient"], result.masks["contrastive"]
    assert 0 < sufficient.sum() < 0.02 * sufficient.size
    model = case.model
    image = torch.from_numpy(case.image)[None]
    only = torch.where(torch.from_numpy(sufficient), image, torch.zeros(()))
    assert int(model(only).argmax()) == 1
    removed = torch.where(torch.from_numpy(contrastive), torch.zeros(()), image)
    assert int(model(removed).argmax()) == 0
    assert result.details["sufficient"]["score"] > 0.5


def test_multiple_disjoint_explanations_for_a_disjunctive_cause():
    case = make_case("disjunctive", size=32)
    result = run(case)
    found = [result.masks[k] for k in sorted(result.masks) if k.startswith("multiple_")]
    assert len(found) >= 2
    assert not (found[0] & found[1]).any()
    hits = {i for mask in found[:2] for i, c in enumerate(case.causes) if (mask & c).any()}
    assert hits == {0, 1}


def test_same_seed_same_map_other_seed_other_partitions():
    case = make_case("single", size=24)
    first, second = run(case), run(case)
    np.testing.assert_array_equal(first.map, second.map)
    other = explain(volume_of(case.image), model=loaded(case.model), seed=7, iterations=ITERATIONS)
    assert not np.array_equal(first.map, other.map)


def test_causal_method_on_a_bare_module():
    """A plain ``nn.Module`` is a `voxcause.models.Model` through `as_model` (a `LoadedModel` with an empty card),
    so the causal engine runs on it as the saliency methods do, and counts its passes the same way."""
    import torch
    from voxcause.causal import CausalResponsibility
    from voxcause.testing import CauseClassifier, class_target, make_conv_case

    x, cause, _ = make_conv_case(2)
    result = CausalResponsibility(CauseClassifier(2), iterations=2, seed=0).attribute(x, target=class_target(1))
    assert result.stats["forward_passes"] > 0
    assert positive_share(result.map.numpy(), torch.as_tensor(cause).numpy()) > 0.5
