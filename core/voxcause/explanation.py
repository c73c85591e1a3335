"""Results: the raw `Attribution` an explainer returns in the model's grid, and the user-facing
`Explanation` in the image's grid, which also knows how to save itself."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .io import Volume


@dataclass
class Attribution:
    """What an explainer computes, in the model's grid.

    Attributes:
        map: (*S_model) float32, higher = more responsible. Never flipped or rescaled.
        masks: named (*S_model) bool masks (e.g. ``sufficient``, ``contrastive``, ``multiple_2``).
        stats: numbers worth reporting (forward passes, seconds per stage, ...).
        details: per-method results (e.g. ``sufficient``: {voxels, fraction, score}).
    """

    map: torch.Tensor
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Explanation:
    """An explanation on the input image's voxels, as `voxcause.explain` returns it.

    Attributes:
        map: (*S_image) float32 attribution, higher = more responsible.
        masks: named (*S_image) bool masks.
        target: ``{"index", "label", "kind", ...}``.
        score: target score on the unperturbed input.
        method: explainer name; params: its settings (seed included); stats: cost and counts.
        volume: the input `Volume` (geometry reference for saving).
    """

    map: np.ndarray
    masks: dict[str, np.ndarray]
    target: dict[str, Any]
    score: float
    method: str
    params: dict[str, Any]
    stats: dict[str, Any]
    details: dict[str, Any]
    volume: Volume
    model: dict[str, Any] = field(default_factory=dict)
    prediction: dict[str, Any] = field(default_factory=dict)
    predicted_labels: np.ndarray | None = None  # segmenters: the model's label map on the image grid
    certificate: dict[str, Any] | None = None  # `voxcause.certificate.Certificate.to_dict()`: can it be trusted?

    def summary(self) -> dict[str, Any]:
        """The ``summary.json`` content (DESIGN.md contract)."""
        from . import __version__

        return _jsonable(
            {
                "method": self.method,
                "target": self.target,
                "score": self.score,
                "prediction": self.prediction,
                "forward_passes": self.stats.get("forward_passes", 0),
                "backward_passes": self.stats.get("backward_passes", 0),
                "seconds": self.stats.get("seconds", 0.0),
                "device": self.stats.get("device", "cpu"),
                "version": __version__,
                "input": self.volume.paths,
                "images": self.volume.paths,
                "model": self.model,
                "params": self.params,
                "warnings": self.stats.get("warnings", []),
                "certificate": self.certificate,
                "stats": self.stats,
                **self.details,
            }
        )

    def save(self, out_dir: str | Path) -> Path:
        """Write map.nii.gz, explanation.seg.nrrd, summary.json and overview.png into ``out_dir`` atomically."""
        from .outputs import save_explanation

        return save_explanation(self, out_dir)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


def dumps(data: dict) -> str:
    return json.dumps(_jsonable(data), indent=2)
