"""The counterfactual region test: does the decision need the region (ΔDrop), does it suffice (ΔFocus)?

The region comes from the segmenter's prediction (default), from a label the client uploads with the
request (``label`` form field; e.g. an annotator's own tumour outline), or from the rex sufficient
explanation of the questioned model. The labelmap shows the region and the rim the removal added (the
dilation); the removed and region-only images are kept as float volumes beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voxcause.counterfactual import counterfactual
from voxcause.errors import InputError
from voxcause.levels import heat_colour

from ..jobs import report_progress
from ..labels import Segments
from ..options import MODEL_OPTION
from .base import VoxcauseInferTask

PREFIX = "counterfactual"


class CounterfactualTask(VoxcauseInferTask):
    """``counterfactual``: remove the region by 3D inpainting, keep only the region, score all three."""

    prefix = PREFIX
    keeps_files = True

    def compute(self, data: dict[str, Any], *, device: str) -> Any:
        options = data["options"]
        target = options["target"]
        region = options["region"]
        role = options[MODEL_OPTION]
        common = {
            "target": None if target == "auto" else target,
            "removal": options["removal"],
            "dilate_mm": float(options["dilate_mm"]),
            "seed": options["seed"],
            "device": device,
            "progress": report_progress,  # stops the computation when the request is cancelled
        }
        if region == "upload":
            label = data.get("label")
            if not isinstance(label, str) or not label:
                raise InputError("region=upload needs a label file — send it in the 'label' form field, "
                                 "or choose region=segmenter")
            with self.model(role, device, data) as model:
                return counterfactual(data["volume"], model=model, mask=label, **common)
        if region == "explanation":
            with self.model(role, device, data) as model:
                return counterfactual(data["volume"], model=model, explanation_method="rex", **common)
        if role == "segmenter":
            with self.model("segmenter", device, data) as model:
                return counterfactual(data["volume"], model=model, segmenter=model, **common)
        # Two models: always take the segmenter's lock before the classifier's, so requests never deadlock.
        with self.model("segmenter", device, data) as segmenter, self.model(role, device, data) as model:
            return counterfactual(data["volume"], model=model, segmenter=segmenter, **common)

    def segments(self, data: dict[str, Any]) -> Segments:
        result = data["result"]
        region = result.region.astype(bool)
        rim = result.removal.filled.astype(bool) & ~region
        return Segments(
            [f"{PREFIX} removed rim", f"{PREFIX} region"], [rim, region], [heat_colour(2, 5), heat_colour(5, 5)]
        ).nonempty()

    def numbers(self, data: dict[str, Any]) -> dict[str, Any]:
        summary = data["result"].summary()
        summary.pop("input", None)
        return summary

    def keep(self, data: dict[str, Any], folder: Path) -> dict[str, Path]:
        data["result"].save(folder)
        return {
            "removed_file": folder / "removed.nii.gz",
            "only_file": folder / "only.nii.gz",
            "counterfactual_file": folder / "counterfactual.seg.nrrd",
            "summary_file": folder / "summary.json",
            "overview_file": folder / "overview.png",
        }
