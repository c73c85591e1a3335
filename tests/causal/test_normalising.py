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
    assert result.stats["forward_passes"] <= 60  # the image, the scale probe, one per canvas (9), no search
    assert result.stats["iterations"]["stopped"] == "undecidable" and not result.masks.get("sufficient")
    assert result.summary()["certificate"]["verdict"] == "fail"


def test_a_network_that_normalises_its_input_is_recognised_from_its_own_outputs():
    """Scale-invariance (the output of 2x the image equals the image's) is read from the model, never from its
    layers' names: true for InstanceNorm networks, false for a plain detector and for a saturated classifier
    whose probability is 1.0 either way (log-probabilities differ)."""
    import torch
    from voxcause.causal.auto import AUTO_ORDER, NORMALISED_ORDER, canvas_order, scale_invariant
    from voxcause.models import load_model
    from voxcause.testing import WHOLE_CARD, make_case
    from voxcause.testing.normalising import SaturatingReader

    normalising = make_normalising_case(size=24, seed=0)
    image = torch.from_numpy(normalising.image)[None]
    assert scale_invariant(loaded(normalising.model), image)
    assert canvas_order(loaded(normalising.model), image) == NORMALISED_ORDER and NORMALISED_ORDER[0] == "shuffle"
    plain = make_case("single", size=16, seed=0)
    assert canvas_order(loaded(plain.model), torch.from_numpy(plain.image)[None]) == AUTO_ORDER
    gate = np.zeros((24, 24), np.float32)
    gate[8:12, 8:12] = 1
    bright = np.full((1, 1, 24, 24), 0.3, np.float32)
    bright[..., 8:12, 8:12] = 3.0  # saturates: probability 1.0 at 1x and 2x
    assert not scale_invariant(loaded(SaturatingReader(gate, np.zeros_like(gate)).eval()), torch.from_numpy(bright))
    unet = load_model(WHOLE_CARD)  # the trained InstanceNorm U-Net (MONAI UNet, norm instance)
    noise = torch.from_numpy(np.random.default_rng(0).normal(0, 0.5, (1, 1, 32, 32, 32)).astype(np.float32))
    assert scale_invariant(unet, noise)


def test_auto_explains_an_instance_norm_segmenter_on_the_shuffled_canvas():
    """A flat canvas takes the body's statistics away from a network that re-normalises its input, so the
    explanation on it must keep tissue that restores them (the sample segmenter: 560 ml on constant, with a slab
    far from the tumour — see tests/demo); the shuffled canvas keeps them. On the trained InstanceNorm U-Net,
    auto starts there and the map and explanation stay on the region."""
    from voxcause.models import load_model
    from voxcause.testing import WHOLE_CARD, ball

    rng = np.random.default_rng(3)
    shape = (48, 48, 48)
    image = rng.normal(0.0, 0.5, shape)
    sphere = ball(shape, (24, 24, 24), 4)
    image[sphere] += 1.5
    result = explain(volume_of(image.astype(np.float32)[None]), model=load_model(WHOLE_CARD), region=sphere, seed=0,
                     iterations=4)
    assert result.stats["scale_invariant_model"] and result.stats["occlusion_used"] == "shuffle"
    assert result.certificate["verdict"] == "pass", result.certificate
    near = ndimage.binary_dilation(sphere, iterations=2)
    positive = np.clip(result.map, 0, None)
    assert positive[near].sum() / positive.sum() >= 0.95  # measured 0.988
    sufficient = result.masks["sufficient"]
    assert sufficient[near].sum() / sufficient.sum() >= 0.7  # measured 0.75 inside the sphere itself
