"""``probability``: what the segmenter itself says per voxel — its probability of a label and, for an ensemble,
how much the members disagree — as bands a MONAI Label client draws, with the float volumes kept beside them.

The numbers are the core's (`voxcause.probability.voxel_probability`: the label's probability of the
unperturbed image; the standard deviation of that probability across an nnU-Net model's folds, times test-time
flips with ``flips=on``). The labelmap shows one of them in fixed bands (``show``); ``probability.nii.gz`` and
``uncertainty.nii.gz`` are kept under ``<output_dir>/<image id>/probability/`` and, for a series of the app's
PACS, stored there as Parametric Maps in the series' study (a viewer such as OHIF shows them as heat overlays).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from voxcause.errors import InputError
from voxcause.io import write_image
from voxcause.levels import heat_colour
from voxcause.probability import voxel_probability
from voxcause.targets import resolve_target

from ..labels import Segments
from .base import VoxcauseInferTask, dicom_files

#: Lower edges of the drawn bands (each band reaches the next edge; the last reaches the maximum).
PROBABILITY_BANDS = (0.1, 0.3, 0.5, 0.7, 0.9)
UNCERTAINTY_BANDS = (0.02, 0.05, 0.1, 0.2)  # std of a probability: at most 0.5
SHOW = ("probability", "uncertainty")


def band_names(edges: tuple[float, ...], name: str) -> list[str]:
    """``<name> 0.1-0.3`` ... ``<name> >= 0.9``: the segment names of `band_segments`."""
    uppers = [*edges[1:], None]
    return [f"{name} {low:g}-{high:g}" if high else f"{name} >= {low:g}" for low, high in zip(edges, uppers,
                                                                                              strict=True)]


def band_segments(values: np.ndarray, edges: tuple[float, ...], name: str) -> Segments:
    """One segment per band ``[edge_k, edge_k+1)`` of ``values`` (the last one open above), hottest last."""
    uppers = [*edges[1:], np.inf]
    masks = [(values >= low) & (values < high) for low, high in zip(edges, uppers, strict=True)]
    colours = [heat_colour(k, len(edges)) for k in range(1, len(edges) + 1)]
    return Segments(band_names(edges, name), masks, colours).nonempty()


class ProbabilityTask(VoxcauseInferTask):
    """The segmenter's probability of a label (and its ensemble's uncertainty) on the input's voxels."""

    prefix = "P"
    keeps_files = True

    def compute(self, data: dict[str, Any], *, device: str) -> dict[str, Any]:
        options = data["options"]
        started = time.perf_counter()
        volume = data["volume"]
        with self.model("segmenter", device, data) as model:
            inputs = model.prepare(volume)
            target = resolve_target(model, inputs, None if options["target"] == "auto" else options["target"])
            probs = model.predict(inputs)
            maps = voxel_probability(model, inputs, probs, target.index,
                                     lambda values: model.to_image_space(values, volume),
                                     flips=options["flips"] == "on")
        if maps is None:
            raise InputError("the configured segmenter returns one score per image — give --conf segmenter a "
                             "segmentation model")
        if options["show"] == "uncertainty" and maps.uncertainty is None:
            raise InputError("show=uncertainty needs an ensemble (an nnU-Net folder with several folds) or flips=on "
                             "— the segmenter is a single model")
        return {"maps": maps, "label": target.label, "seconds": time.perf_counter() - started}

    def segments(self, data: dict[str, Any]) -> Segments:
        result = data["result"]
        maps = result["maps"]
        if data["options"]["show"] == "uncertainty":
            return band_segments(maps.uncertainty, UNCERTAINTY_BANDS, f"SD of P({result['label']})")
        return band_segments(maps.probability, PROBABILITY_BANDS, f"P({result['label']})")

    def numbers(self, data: dict[str, Any]) -> dict[str, Any]:
        result = data["result"]
        maps = result["maps"]
        shown = "uncertainty" if data["options"]["show"] == "uncertainty" else "probability"
        meaning = {name: (f"voxels whose {shown} of '{result['label']}' lies in {name.split(')', 1)[1].strip()}")
                   for name in data["segments"].names}
        numbers = {
            "label": result["label"],
            "model_probability": maps.describe(),
            "label_meaning": meaning,
            "probability_max": round(float(maps.probability.max()), 4),
            "seconds": round(result["seconds"], 3),
        }
        if maps.uncertainty is not None:
            numbers["uncertainty_max"] = round(float(maps.uncertainty.max()), 4)
        return numbers

    def keep(self, data: dict[str, Any], folder: Path) -> dict[str, Path]:
        """probability.nii.gz (+ uncertainty.nii.gz); for a PACS series also their Parametric Maps."""
        from voxcause.io.atomic import atomic_directory
        from voxcause.io.dicom_out import write_parametric_maps

        volume = data["volume"]
        volumes = data["result"]["maps"].volumes()
        source = self.dicom_volume(data)
        with atomic_directory(folder) as staging:
            for name, values in volumes.items():
                write_image(values, volume, staging / f"{name}.nii.gz")
            if source is not None:
                write_parametric_maps(staging, source, volumes, method="model", target=data["result"]["label"])
        return {f"{name}_file": folder / f"{name}.nii.gz" for name in volumes} | dicom_files(folder)
