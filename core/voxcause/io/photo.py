"""2D photographs and screenshots (JPEG, PNG, TIFF, BMP): read as stored, fitted to the model's channels.

SimpleITK reads these formats too, but gives a grey PNG with alpha no pixel type at all and an RGBA screenshot
four channels; Pillow reads every mode. A picture becomes 1 channel (grey, 16-bit and float modes) or 3 (colour;
palettes expanded), with an alpha channel dropped — transparency is not image content. Pixel spacing is 1: a
photograph carries no physical geometry.

When the picture and the model disagree, the model's card (or ``--grayscale``) decides (`fit_channels`): a grey
picture for a 3-channel model is repeated into three equal channels (what an RGB model sees of a grey image), a
colour picture for a 1-channel model becomes its luminance (ITU-R BT.601 weights, as Pillow's ``L`` mode).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

if TYPE_CHECKING:  # images.py imports this module
    from .images import Volume

#: File suffixes read as 2D pictures.
PHOTO_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
#: Luminance weights of R, G, B (ITU-R BT.601), as Pillow converts colour to grey.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


def is_photo(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in PHOTO_SUFFIXES


def read_photo(path: str | os.PathLike) -> tuple[np.ndarray, sitk.Image] | None:
    """(C, H, W) float32 array (C = 1 or 3) and a 2D geometry reference; None for a multi-page TIFF (a stack
    of slices, left to SimpleITK)."""
    from PIL import Image, UnidentifiedImageError

    source = Path(path)
    try:
        with Image.open(source) as picture:
            if getattr(picture, "n_frames", 1) > 1:
                return None
            picture.load()
            mode = picture.mode
            if mode in GREY_MODES:
                grey = picture.convert("F") if mode in ("1", "L", "LA") else picture
                array = np.asarray(grey, dtype=np.float32)[None]
            else:  # RGB, RGBA, P (palette), CMYK, YCbCr ...: the colours as stored, alpha dropped
                array = np.moveaxis(np.asarray(picture.convert("RGB"), dtype=np.float32), -1, 0)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise InputError(f"cannot read picture {source} ({error}) — check the file, or convert it to PNG") from None
    reference = sitk.Image(int(array.shape[2]), int(array.shape[1]), sitk.sitkFloat32)
    return np.ascontiguousarray(array), reference


def to_grayscale(array: np.ndarray) -> np.ndarray:
    """(3, *S) colour -> (1, *S) luminance; a 1-channel array is returned as it is."""
    if array.shape[0] == 1:
        return array
    if array.shape[0] != 3:
        raise InputError(f"--grayscale needs a 1- or 3-channel picture, not {array.shape[0]} channels")
    return np.tensordot(LUMA, array, axes=1)[None].astype(np.float32)


def fit_channels(array: np.ndarray, expected: int | None) -> tuple[np.ndarray, str | None]:
    """A picture's (C, *S) array fitted to a model taking ``expected`` channels, and a note saying what changed.

    Only grey <-> colour is fitted; other mismatches are left to the model's own channel check, which names the
    fix. (``--grayscale`` converts the picture with `to_grayscale` before it gets here.)
    """
    if expected == 3 and array.shape[0] == 1:
        return np.repeat(array, 3, axis=0), "the grey picture was repeated into the model's 3 channels"
    if expected == 1 and array.shape[0] == 3:
        return to_grayscale(array), "the colour picture was converted to grey: the model takes 1 channel"
    return array, None


def fit_photo(volume: Volume, expected: int | None) -> tuple[Volume, str | None]:
    """`fit_channels` for a `Volume` read from pictures; any other volume is returned unchanged (note None)."""
    if volume.spatial_dims != 2 or not volume.paths or not all(is_photo(path) for path in volume.paths):
        return volume, None
    array, note = fit_channels(volume.array, expected)
    return (replace(volume, array=array) if note else volume), note
