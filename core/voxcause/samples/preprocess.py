"""The one preprocessing the sample models were trained with (and that the core must apply to explain them).

``prepare_for_model``: image array (C, *S) -> resize to the card's ``spatial_size`` with
``torch.nn.functional.interpolate`` (``trilinear`` in 3D, ``bilinear`` in 2D, ``align_corners=False``, no
antialiasing) -> ``voxcause.models.normalization.normalize(array, card["normalize"])`` -> model.
Resizing happens *before* normalisation, so the z-score statistics are those of the resized image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..models.normalization import normalize


def resize(array: np.ndarray, spatial_size: Sequence[int]) -> np.ndarray:
    """Resize (C, *S) to (C, *spatial_size): (bi/tri)linear, align_corners=False; float32."""
    size = tuple(int(n) for n in spatial_size)
    data = np.ascontiguousarray(array, dtype=np.float32)
    if data.shape[1:] == size:
        return data.copy()
    mode = {2: "bilinear", 3: "trilinear"}[len(size)]
    tensor = F.interpolate(torch.from_numpy(data)[None], size=size, mode=mode, align_corners=False)
    return tensor[0].numpy()


def prepare_for_model(array: np.ndarray, spatial_size: Sequence[int], normalize_spec="zscore") -> np.ndarray:
    """Model input (C, *spatial_size) float32 from an image array (C, *S): resize, then normalise."""
    return normalize(resize(array, spatial_size), normalize_spec)


def resize_mask(mask: np.ndarray, spatial_size: Sequence[int]) -> np.ndarray:
    """A boolean mask (*S) on the model grid: the same interpolation as the image, then > 0.5."""
    return resize(mask[None].astype(np.float32), spatial_size)[0] > 0.5
