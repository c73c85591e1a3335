"""The segmenter's own prediction: one segment per foreground label, on the input's voxels."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ..labels import Segments
from .base import VoxcauseInferTask

#: Colours of the segmenter's labels in order (greens and blues, apart from the explanations' heat scale).
PALETTE = [(0.2, 0.8, 0.3), (0.2, 0.55, 1.0), (0.6, 0.3, 0.9), (0.1, 0.75, 0.75), (0.9, 0.5, 0.8)]


def segmenter_label_map(model: Any, volume: Any) -> tuple[np.ndarray, tuple[str, ...], torch.Tensor]:
    """(label map on the image grid, label names, probabilities (1, K, *S_model)) of a segmenter."""
    inputs = model.prepare(volume)
    probs = model.predict(inputs)
    if probs.ndim < 3:
        from voxcause.errors import InputError

        raise InputError(
            "the configured segmenter returns one score per image — give --conf segmenter a segmentation model"
        )
    labels = model.labels_for(probs.shape[1])
    label_map = (probs[0, 0] >= model.threshold).long() if probs.shape[1] == 1 else probs[0].argmax(0)
    image_labels = model.to_image_space(label_map.to(torch.float32), volume, order=0)
    return np.rint(image_labels).astype(np.int64), labels, probs


class SegmentationTask(VoxcauseInferTask):
    """``segmentation``: the sample tumour segmenter (or the one given with ``--conf segmenter``)."""

    def compute(self, data: dict[str, Any], *, device: str) -> dict[str, Any]:
        started = time.perf_counter()
        with self.model("segmenter", device, data) as model:
            before = model.forward_passes
            label_map, labels, probs = segmenter_label_map(model, data["volume"])
            passes = model.forward_passes - before
            warnings = list(model.warnings)  # e.g. an nnU-Net model's: test-time mirroring is off
        return {"label_map": label_map, "labels": labels, "forward_passes": passes,
                "seconds": time.perf_counter() - started, "warnings": warnings}

    def segments(self, data: dict[str, Any]) -> Segments:
        result = data["result"]
        names, masks, colours = [], [], []
        for index, name in enumerate(result["labels"]):
            if index == 0 and name.lower() in ("background", "0"):
                continue
            names.append(name)
            masks.append(result["label_map"] == index)
            colours.append(PALETTE[(len(names) - 1) % len(PALETTE)])
        return Segments(names, masks, colours).nonempty()

    def numbers(self, data: dict[str, Any]) -> dict[str, Any]:
        result, volume = data["result"], data["volume"]
        voxel_ml = float(np.prod(volume.spacing)) / 1000.0
        counts = {name: int((result["label_map"] == index).sum()) for index, name in enumerate(result["labels"])}
        return {
            "voxels": counts,
            "volume_ml": {name: round(count * voxel_ml, 3) for name, count in counts.items()},
            "forward_passes": result["forward_passes"],
            "seconds": round(result["seconds"], 3),
            "warnings": result["warnings"],
        }
