"""``counterfactual``: the region test — ΔDrop when the region is removed, ΔFocus when only it is kept."""

from __future__ import annotations

from typing import Any

from ..catalog import has_counterfactual, removal_methods
from ..config_base import ExplanationConfig
from ..infers import CounterfactualTask
from ..infers.counterfactual import PREFIX
from ..options import Choice, Integer, Option, model_option, seed_option, target_option


class Counterfactual(ExplanationConfig):
    """Would the model still decide the same without the region, and with only the region?"""

    roles = ("classifier", "segmenter")
    methods = ("rex",)  # only for region=explanation; the test itself needs no explainer
    prefix = PREFIX
    description = "Counterfactual region test: remove the region (3D inpainting) / keep only it; ΔDrop, ΔFocus"
    task_class = CounterfactualTask

    def core_offers(self) -> bool:
        return has_counterfactual()

    def declared_labels(self) -> dict[str, int]:
        return {f"{PREFIX} removed rim": 1, f"{PREFIX} region": 2}

    def task_arguments(self) -> dict[str, Any]:
        return {}

    def options(self) -> list[Option]:
        regions = ["upload"]
        if "segmenter" in self.models.roles:
            regions.insert(0, "segmenter")
        if self.offered:
            regions.append("explanation")
        return [
            model_option(self.models.roles),
            Choice("region", tuple(regions),
                   "segmenter = its predicted tumour; upload = the label sent with the request; "
                   "explanation = the rex sufficient explanation"),
            target_option(*self.models.labels()),
            Choice("removal", removal_methods(), "how the region is filled in"),
            Integer("dilate_mm", 2, 0, 20, "grow the region by this many mm before removing it"),
            seed_option(),
        ]
