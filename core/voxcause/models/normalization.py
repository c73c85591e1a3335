"""Intensity normalisation named in a model card.

The same function prepares the training data of the sample models and every image explained, so a model
sees at explanation time exactly the intensities it was trained on. Occlusion baselines ("constant 0") are
defined *after* this step: 0 is the mean tissue intensity for ``zscore`` and the darkest value for
``minmax``.

Accepted specs:
    ``None`` / ``"none"``: unchanged.
    ``"zscore"``: per channel, subtract the mean and divide by the std of the non-zero voxels (MONAI's
        ``NormalizeIntensity(nonzero=True, channel_wise=True)``); zero voxels (air) stay 0.
    ``"minmax"``: per channel, scale to [0, 1].
    ``{"mean": [..], "std": [..]}``: fixed per-channel statistics (one value broadcasts to all channels).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

NormalizeSpec = Any  # None | str | dict


def normalize(array: np.ndarray, spec: NormalizeSpec) -> np.ndarray:
    """Return a float32 copy of ``array`` (C, *spatial) normalised per ``spec``; the input is not modified."""
    out = np.array(array, dtype=np.float32, copy=True)
    if spec is None or spec == "none":
        return out
    if spec == "zscore":
        for channel in out:
            nonzero = channel != 0
            if not nonzero.any():
                continue
            values = channel[nonzero]
            std = float(values.std()) or 1.0
            channel[nonzero] = (values - float(values.mean())) / std
        return out
    if spec == "minmax":
        for channel in out:
            low, high = float(channel.min()), float(channel.max())
            channel -= low
            if high > low:
                channel /= high - low
        return out
    if isinstance(spec, dict) and "mean" in spec and "std" in spec:
        shape = (-1,) + (1,) * (out.ndim - 1)
        mean = np.broadcast_to(
            np.asarray(spec["mean"], np.float32).reshape(shape), (out.shape[0],) + (1,) * (out.ndim - 1)
        )
        std = np.broadcast_to(np.asarray(spec["std"], np.float32).reshape(shape), mean.shape)
        return ((out - mean) / std).astype(np.float32)
    raise InputError(
        f"unknown normalisation {spec!r}: use none, zscore, minmax or {{'mean': [...], 'std': [...]}} "
        "in the model card's 'normalize' field or --normalize"
    )
