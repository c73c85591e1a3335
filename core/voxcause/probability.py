"""What the model itself says per voxel, beside why: the explained label's probability and, for an ensemble,
how much its members disagree.

The two most requested outputs of segmenters (nnU-Net's "softmax probabilities in nii.gz", MONAI Label's
probability map export) fall out of the explanation's own forward pass:

- ``probability``: the explained label's probability (the model's activation: softmax, or the sigmoid of a
  single logit) of the unperturbed image, the very value whose region mean is explained, moved onto the
  input's voxels by the model's own inverse step (linear resampling; nnU-Net's probability resampling).
- ``uncertainty`` (ensembles only): the per-voxel **standard deviation of that probability across the
  ensemble's members**: an nnU-Net model's folds, or a card's weight files (``weights: [a.pt, b.pt]``,
  `voxcause.models.ensemble`), optionally times test-time flips
  (each member also scores the image mirrored along every combination of the model's mirroring axes, flipped
  back). Epistemic disagreement, not predictive entropy: where every fold agrees on 0.5 it is 0. A single
  model asked for flips gets the spread over its flips. Costs one extra whole-image pass per member and flip.

Classifiers have no per-voxel probability: nothing is written for them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

#: summary.json's words for what ``uncertainty.nii.gz`` holds.
UNCERTAINTY_MEANING = "per-voxel standard deviation of the explained label's probability across the ensemble members"


@dataclass
class VoxelProbability:
    """Per-voxel maps on the image grid (float32) and what they are.

    Attributes:
        probability: (*S_image) the explained label's probability.
        uncertainty: (*S_image) std of that probability across ``members`` scorings, or None (one member).
        members: how many scorings the uncertainty spreads over (folds x flips).
        folds: ensemble members (nnU-Net folds) among them; flips: mirrorings per fold (1: none).
    """

    probability: np.ndarray
    uncertainty: np.ndarray | None
    members: int
    folds: int
    flips: int

    def volumes(self) -> dict[str, np.ndarray]:
        """``{name: array}`` as `Explanation.extra_volumes` (written as ``<name>.nii.gz``)."""
        maps = {"probability": self.probability}
        if self.uncertainty is not None:
            maps["uncertainty"] = self.uncertainty
        return maps

    def describe(self) -> dict[str, Any]:
        """summary.json's ``model_probability``: what each file holds (and, for the uncertainty, over what)."""
        entry: dict[str, Any] = {"probability": "the explained label's probability (model activation, unperturbed)"}
        if self.uncertainty is not None:
            entry.update({"uncertainty": UNCERTAINTY_MEANING, "members": self.members, "folds": self.folds,
                          "flips": self.flips})
        return entry


def label_probability(probs: torch.Tensor, index: int) -> torch.Tensor:
    """(B, K, *S) probabilities -> (B, *S) of label ``index`` (a single sigmoid logit is label 1)."""
    if probs.shape[1] == 1:
        return probs[:, 0] if index == 1 else 1.0 - probs[:, 0]
    return probs[:, index]


def members(model: Any) -> int:
    """Ensemble members of a loaded model: an nnU-Net model's folds, a card's weight files
    (`voxcause.models.ensemble.MeanEnsemble`), else 1."""
    from .models.ensemble import MeanEnsemble

    if getattr(model, "fold_weights", None):
        return len(model.fold_weights)
    return len(model.raw.members) if isinstance(getattr(model, "raw", None), MeanEnsemble) else 1


@contextmanager
def _member(model: Any, index: int) -> Iterator[None]:
    """Score with member ``index`` alone (an nnU-Net fold, a card's weight file), restoring the ensemble after."""
    if members(model) == 1:
        yield
        return
    if not getattr(model, "fold_weights", None):
        with model.raw.only(index):
            yield
        return
    weights = model.fold_weights
    model.fold_weights = [weights[index]]
    try:
        yield
    finally:
        model.fold_weights = weights


def flip_axes(model: Any, spatial_dims: int) -> list[tuple[int, ...]]:
    """Every non-empty combination of the mirroring axes (tensor dims of a (B, C, *S) batch), as nnU-Net's
    test-time mirroring: the model's ``allowed_mirroring_axes`` (nnU-Net), else every spatial axis."""
    allowed = getattr(model, "allowed_mirroring_axes", None)
    axes = [int(a) for a in allowed] if allowed is not None else list(range(spatial_dims))
    axes = [axis + 2 for axis in axes if axis < spatial_dims]
    return [combo for size in range(1, len(axes) + 1) for combo in itertools.combinations(axes, size)]


def voxel_probability(
    model: Any, inputs: torch.Tensor, probs: torch.Tensor, index: int, to_image: Any, *, flips: bool = False
) -> VoxelProbability | None:
    """The explained label's probability and, for an ensemble (or with ``flips``), its spread across members.

    Args:
        model: the `LoadedModel` that gave ``probs``.
        inputs: (1, C, *S_model) the prepared image.
        probs: (1, K, *S_model) the model's probabilities of ``inputs`` (ensemble mean for nnU-Net).
        index: the explained label.
        to_image: maps a (*S_model) float tensor onto the image grid (``loaded.to_image_space``, order 1).
        flips: also score each member on the image mirrored along every combination of mirroring axes.

    Returns:
        `VoxelProbability`, or None for a classifier (``probs`` of shape (1, K)).
    """
    if probs.ndim < 3:
        return None
    probability = np.asarray(to_image(label_probability(probs, index)[0]), dtype=np.float32)
    folds = members(model)
    combos = flip_axes(model, inputs.ndim - 2) if flips else []
    if folds == 1 and not combos:
        return VoxelProbability(probability, None, 1, 1, 1)
    scorings = []
    with torch.no_grad():
        for fold in range(folds):
            with _member(model, fold):
                scorings.append(label_probability(model.predict(inputs), index)[0] if folds > 1 else
                                label_probability(probs, index)[0])
                for axes in combos:
                    mirrored = model.predict(torch.flip(inputs, axes))
                    scorings.append(label_probability(torch.flip(mirrored, axes), index)[0])
    spread = torch.stack([s.float().cpu() for s in scorings]).std(0, unbiased=False)
    uncertainty = np.asarray(to_image(spread), dtype=np.float32).clip(min=0.0)
    return VoxelProbability(probability, uncertainty, len(scorings), folds, 1 + len(combos))
