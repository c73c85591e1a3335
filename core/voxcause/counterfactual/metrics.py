"""Counterfactual scores: how much the decision depends on a region (ΔDrop) and whether it suffices (ΔFocus).

For a target (a class of a classifier, or a class inside a fixed region of a segmenter):

* ``p_orig``   = score on the original image;
* ``p_remove`` = score with the region removed (inpainted);
* ``p_only``   = score with only the region kept;
* ``delta_drop`` = p_orig - p_remove (large: the decision needs the region);
* ``delta_focus`` = p_only (large: the region alone carries the decision);
* ``relative_drop`` = delta_drop / p_orig (the share of the score the region accounts for);
* the predicted class of each of the three images (for a segmenter: the majority class inside the region,
  and the share of region voxels still labelled as the target).

The score is the target's own ``score`` (`voxcause.targets`): a class probability, or the mean class
probability inside the region for a segmenter.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

VARIANTS = ("orig", "remove", "only")


@dataclass(frozen=True)
class CounterfactualScores:
    """The numbers of one counterfactual case (see the module docstring)."""

    task: str
    target: dict[str, Any]
    p_orig: float
    p_remove: float
    p_only: float
    delta_drop: float
    delta_focus: float
    relative_drop: float | None
    predicted: dict[str, dict[str, Any]]

    def flips(self) -> bool:
        """Does removing the region change the predicted class?"""
        return self.predicted["remove"]["index"] != self.predicted["orig"]["index"]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["class_orig"] = self.predicted["orig"]["label"]
        data["class_remove"] = self.predicted["remove"]["label"]
        data["class_only"] = self.predicted["only"]["label"]
        data["flips"] = self.flips()
        return data


def deltas(p_orig: float, p_remove: float, p_only: float) -> dict[str, float | None]:
    """ΔDrop, ΔFocus and the relative drop from the three scores (relative drop is None when p_orig is 0)."""
    drop = p_orig - p_remove
    return {"delta_drop": drop, "delta_focus": p_only, "relative_drop": drop / p_orig if p_orig > 0 else None}


def _predicted_class(probs: torch.Tensor, labels: tuple[str, ...], *, threshold: float, target) -> list[dict]:
    """Predicted class per image of a (3, K) or (3, K, *S) probability batch."""
    rows = []
    single = probs.shape[1] == 1
    if probs.ndim == 2:
        for row in probs:
            index = int(row[0] >= threshold) if single else int(row.argmax())
            rows.append({"index": index, "label": labels[index]})
        return rows
    region = target.region.to(probs.device)
    for row in probs:
        label_map = (row[0] >= threshold).long() if single else row.argmax(0)
        inside = label_map[region]
        counts = torch.bincount(inside.flatten(), minlength=len(labels))
        index = int(counts.argmax())
        rows.append({"index": index, "label": labels[index],
                     "target_fraction": round(float(counts[target.index]) / max(int(inside.numel()), 1), 6)})
    return rows


def score_variants(probs: torch.Tensor, *, target, labels: tuple[str, ...], task: str,
                   threshold: float = 0.5) -> CounterfactualScores:
    """Turn the model's probabilities for (original, removed, only) into `CounterfactualScores`.

    Args:
        probs: (3, K) for a classifier or (3, K, *S_model) for a segmenter, in `VARIANTS` order.
        target: a `voxcause.targets.ClassTarget` or `RegionTarget` (anything with ``score``, ``index``,
            ``describe()``; a region target also has ``region``).
        labels: the model's label names; task: ``classification`` or ``segmentation``.
        threshold: decision threshold of a single sigmoid output.
    """
    if probs.shape[0] != len(VARIANTS):
        raise ValueError(f"expected probabilities of 3 images (original, removed, only), got {probs.shape[0]}")
    scores = [float(s) for s in target.score(probs)]
    p_orig, p_remove, p_only = scores
    predicted = _predicted_class(probs, labels, threshold=threshold, target=target)
    return CounterfactualScores(
        task=task, target=target.describe(), p_orig=p_orig, p_remove=p_remove, p_only=p_only,
        predicted=dict(zip(VARIANTS, predicted, strict=True)), **deltas(p_orig, p_remove, p_only),
    )
