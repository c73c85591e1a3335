"""Removal by inpainting: the region looks like its surroundings, nothing else changes, bad input fails."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from voxcause.counterfactual.inpaint import METHODS, remove_region
from voxcause.counterfactual.regions import foreground_of
from voxcause.errors import InputError

from .conftest import BRIGHT, phantom

HAVE_CV2 = True
try:  # the slice-wise methods need OpenCV; the rest of the module does not
    import cv2  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_CV2 = False

ALL = [m for m in METHODS if m != "context"]


def _shells(filled: np.ndarray, foreground: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Filled voxels touching kept tissue (inner shell) and kept tissue touching the fill (outer shell)."""
    inner = filled & ndimage.binary_dilation(~filled & foreground)
    outer = ~filled & foreground & ndimage.binary_dilation(filled)
    return inner, outer


def _ring(filled: np.ndarray, foreground: np.ndarray, width_mm: float = 4.0, spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Kept tissue within ``width_mm`` of the fill (the ring the infill is matched to)."""
    near = ndimage.distance_transform_edt(~filled, sampling=spacing[-filled.ndim:]) <= width_mm
    return near & ~filled & foreground


@pytest.mark.parametrize("method", ALL)
def test_removal_leaves_no_trace_and_touches_nothing_else(method: str) -> None:
    if method in ("navier-stokes", "telea") and not HAVE_CV2:
        pytest.skip("opencv-python-headless not installed")
    image, sphere, _ = phantom()
    before = image.copy()
    result = remove_region(image, sphere, spacing=(1.0, 1.0, 1.0), method=method, seed=0)
    out, filled = result.array, result.filled
    assert np.array_equal(image, before), "input modified"
    assert out.shape == image.shape and out.dtype == np.float32
    assert filled[sphere].all() and filled.sum() > sphere.sum()  # dilated by 2 mm
    assert np.array_equal(out[:, ~filled], image[:, ~filled]), "voxels outside the region changed"
    foreground = foreground_of(image)
    ring = image[0][_ring(filled, foreground)]
    values = out[0][filled]
    # no copy of the lesion: nothing near the lesion's brightness is left, the fill sits at tissue level
    assert values.max() < 0.5 * (BRIGHT + ring.mean())
    assert abs(values.mean() - ring.mean()) < 1.5 * ring.std()
    if method in ("harmonic", "constant"):
        assert ring.min() - 1e-3 <= values.min() and values.max() <= ring.max() + 1e-3
    # no step at the boundary: both sides of the border have the same mean within the tissue's noise
    inner, outer = _shells(filled, foreground)
    assert abs(out[0][inner].mean() - out[0][outer].mean()) < 0.6 * ring.std()


def test_harmonic_reproduces_a_linear_ramp_exactly() -> None:
    """Linear functions are harmonic: without noise the infill of a ramp is the ramp."""
    z, y, x = np.mgrid[:24, :24, :24].astype(np.float32)
    ramp = (50 + 2 * x + 3 * y - z)[None]
    region = (z - 12) ** 2 + (y - 12) ** 2 + (x - 12) ** 2 < 25
    lesion = ramp.copy()
    lesion[0][region] = 500.0
    result = remove_region(lesion, region, noise=False, dilate_mm=0.0, foreground=np.ones(region.shape, bool))
    assert np.abs(result.array - ramp).max() < 1e-3


def test_harmonic_noise_matches_ring_texture_and_is_seeded() -> None:
    image, sphere, _ = phantom()
    first = remove_region(image, sphere, seed=3)
    again = remove_region(image, sphere, seed=3)
    other = remove_region(image, sphere, seed=4)
    assert np.array_equal(first.array, again.array)
    assert not np.array_equal(first.array, other.array)
    smooth = remove_region(image, sphere, noise=False)
    texture = (first.array - smooth.array)[0][first.filled]
    assert first.details["noise_std"][0] == pytest.approx(4.0, rel=0.2)  # the phantom's tissue noise sd is 4
    assert 0.4 * 4.0 < texture.std() < 1.2 * 4.0  # tapered towards the boundary, so a little below


def test_multichannel_2d_and_anisotropic() -> None:
    image, sphere, _ = phantom()
    two = np.concatenate([image, -image + 1000.0])  # second channel: inverted contrast
    result = remove_region(two, sphere, spacing=(2.0, 1.0, 0.5))
    for channel in range(2):
        ring = two[channel][_ring(result.filled, foreground_of(two), spacing=(2.0, 1.0, 0.5))]
        values = result.array[channel][result.filled]
        assert ring.min() - 1e-3 <= values.min() and values.max() <= ring.max() + 1e-3
    plane = image[:, 20]  # (1, y, x) 2D slice through the sphere
    result2d = remove_region(plane, sphere[20])
    assert result2d.array.shape == plane.shape
    assert result2d.array[0][sphere[20]].max() < 200


def test_context_fill_is_seamless_and_intensity_matched() -> None:
    image, sphere, _ = phantom(seed=0)
    healthy, _, _ = phantom(seed=1)
    healthy = 2.0 * healthy  # another scanner gain: the fill must be matched back to this image's levels
    healthy[0][sphere] = 2.0 * 100.0
    result = remove_region(image, sphere, method="context", context=healthy)
    ring = image[0][_ring(result.filled, foreground_of(image))]
    values = result.array[0][result.filled]
    assert abs(values.mean() - ring.mean()) < ring.std()
    assert result.details["context_scale"][0] == pytest.approx(0.5, rel=0.2)


def test_constant_value_per_channel() -> None:
    image, sphere, _ = phantom()
    result = remove_region(np.concatenate([image, image]), sphere, method="constant", value=[7.0, 9.0])
    assert set(np.unique(result.array[0][result.filled])) == {7.0}
    assert set(np.unique(result.array[1][result.filled])) == {9.0}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda img, s: (img, np.zeros_like(s)), "empty"),
        (lambda img, s: (img, s[:-1]), "does not match"),
        (lambda img, s: (img, np.pad(np.ones((2, 2, 2), bool), ((0, 38), (0, 38), (0, 38)))), "outside"),
        (lambda img, s: (img, foreground_of(img)), "whole foreground"),
        (lambda img, s: (img[0], s), "channel axis"),
    ],
    ids=["empty-mask", "wrong-shape", "mask-in-air", "whole-foreground", "no-channel-axis"],
)
def test_bad_input_raises_input_error_naming_the_fix(make, message: str) -> None:
    image, sphere, _ = phantom()
    bad_image, bad_mask = make(image, sphere)
    with pytest.raises(InputError, match=message) as error:
        remove_region(bad_image, bad_mask)
    assert "\n" not in str(error.value) and "—" in str(error.value)


def test_unknown_method_and_missing_context() -> None:
    image, sphere, _ = phantom()
    with pytest.raises(InputError, match="harmonic"):
        remove_region(image, sphere, method="magic")
    with pytest.raises(InputError, match="--context"):
        remove_region(image, sphere, method="context")
    with pytest.raises(InputError, match="resample"):
        remove_region(image, sphere, method="context", context=np.zeros((1, 8, 8, 8), np.float32))


@pytest.mark.parametrize("method", ["harmonic", "navier-stokes", "telea"])
def test_removal_is_scale_invariant(method: str) -> None:
    """OpenCV's Telea overshoots on 0-1 intensities unless mapped to 0-255: the fill must not depend on units."""
    if method != "harmonic" and not HAVE_CV2:
        pytest.skip("opencv-python-headless not installed")
    image, sphere, _ = phantom()
    big = remove_region(image, sphere, method=method, noise=False)
    small = remove_region(image / 300.0, sphere, method=method, noise=False)
    assert np.allclose(small.array * 300.0, big.array, atol=0.05)


def test_region_in_the_air_is_filled_with_air() -> None:
    """A scanner tag outside the head (an island of foreground in the background) becomes background."""
    image, _, _ = phantom()
    tag = np.zeros(image.shape[1:], bool)
    tag[33:38, 33:38, 1:6] = True
    assert not (image[0][tag] != 0).any()
    image[0][tag] = 500.0
    result = remove_region(image, tag)
    assert result.details["surroundings"] == "background"
    assert np.abs(result.array[0][result.filled]).max() < 1e-3
    assert np.array_equal(result.array[0][~result.filled], image[0][~result.filled])
