"""``counterfactual``: the region test — ΔDrop when the region is removed, ΔFocus when only it is kept."""

from __future__ import annotations

from typing import Any

from monailabel.interfaces.config import TaskConfig
from monailabel.interfaces.tasks.infer_v2 import InferTask

from ..catalog import configured_models, has_counterfactual, registered_methods, removal_methods
from ..infers import CounterfactualTask
from ..infers.counterfactual import PREFIX
from ..options import Choice, Integer, OptionTable, model_option, seed_option, target_option


class Counterfactual(TaskConfig):
    """Would the model still decide the same without the region, and with only the region?"""

    def init(self, name: str, model_dir: str, conf: dict[str, str], planner: Any, **kwargs: Any) -> None:
        super().init(name, model_dir, conf, planner, **kwargs)
        self.settings = kwargs["settings"]
        self.models = configured_models(self.settings, "classifier", "segmenter")
        self.enabled = has_counterfactual() and bool(self.models.roles)
        self.labels = {f"{PREFIX} removed rim": 1, f"{PREFIX} region": 2}

    def infer(self) -> InferTask | dict[str, InferTask]:
        if not self.enabled:
            return {}
        regions = ["upload"]
        if "segmenter" in self.models.roles:
            regions.insert(0, "segmenter")
        if "rex" in registered_methods():
            regions.append("explanation")
        options = OptionTable([
            model_option(self.models.roles),
            Choice("region", tuple(regions),
                   "segmenter = its predicted tumour; upload = the label sent with the request; "
                   "explanation = the rex sufficient explanation"),
            target_option(*self.models.labels()),
            Choice("removal", removal_methods(), "how the region is filled in"),
            Integer("dilate_mm", 2, 0, 20, "grow the region by this many mm before removing it"),
            seed_option(),
        ])
        return {
            self.name: CounterfactualTask(
                name=self.name,
                settings=self.settings,
                model_paths=self.models.paths,
                labels=self.labels,
                options=options,
                description="Counterfactual region test: remove the region (3D inpainting) / keep only it; "
                "ΔDrop, ΔFocus",
                channels=self.models.channels(),
            )
        }

    def trainer(self) -> None:
        return None
