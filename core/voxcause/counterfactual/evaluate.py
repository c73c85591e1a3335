"""Feeding the counterfactual images to the model with the original image's intensity normalisation.

A model card may normalise each image by its own statistics (``zscore``: mean and std of the non-zero
voxels; ``minmax``). Recomputing them on a counterfactual would move every voxel: a region-only image
whose tissue was set to the mean has a tiny std, so its kept lesion would be blown up several-fold and
look *more* abnormal than in the original — a normalisation artefact, not the model's judgement. So by
default (``normalization="frozen"``) the statistics of the original image are applied to all three
images: the model sees exactly the intervention and nothing else. ``normalization="refit"`` recomputes
them per image (what a pipeline that normalises each scan would do), for comparison.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import InputError
from ..io import Volume
from ..models.grid import to_model_grid
from ..models.normalization import normalize

NORMALIZATIONS = ("frozen", "refit")


def _frozen(original: np.ndarray, spec) -> list:
    """Per-channel functions applying ``spec`` with the statistics of ``original`` (C, *S_model)."""
    functions = []
    for channel in original:
        if spec == "zscore":
            values = channel[channel != 0]
            mean = float(values.mean()) if values.size else 0.0
            std = (float(values.std()) if values.size else 1.0) or 1.0
            functions.append(lambda x, m=mean, s=std: np.where(x != 0, (x - m) / s, 0.0))
        elif spec == "minmax":
            low, high = float(channel.min()), float(channel.max())
            span = high - low if high > low else 1.0
            functions.append(lambda x, lo=low, sp=span: (x - lo) / sp)
        else:
            return []
    return functions


def model_inputs(model, original: Volume, arrays: Sequence[np.ndarray], *,
                 normalization: str = "frozen") -> torch.Tensor:
    """(N, C, *S_model) model inputs for ``arrays`` (each (C, *S_image), e.g. original/removed/only).

    Args:
        model: a `voxcause.LoadedModel`.
        original: the unmodified image; its statistics are used with ``normalization="frozen"``.
        arrays: image-space arrays on ``original``'s grid.
        normalization: ``frozen`` (default) or ``refit`` (see the module docstring).
    """
    if normalization not in NORMALIZATIONS:
        raise InputError(f"unknown normalisation mode {normalization!r} — use frozen or refit")
    model.check_volume(original)
    spec = model.card.normalize
    card = model.card
    functions = []
    if normalization == "frozen" and spec in ("zscore", "minmax"):
        base = to_model_grid(original.array, card.spatial_size, card.resize)[0].numpy()
        functions = _frozen(base, spec)
    batch = []
    for array in arrays:
        grid = to_model_grid(array, card.spatial_size, card.resize)[0].numpy()
        if functions:
            prepared = np.stack([f(c) for f, c in zip(functions, grid, strict=True)]).astype(np.float32)
        else:
            prepared = normalize(grid, spec)
        batch.append(torch.from_numpy(prepared))
    return torch.stack(batch).to(model.device)
