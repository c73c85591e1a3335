"""``explain_dea``: dual-evidence fusion (gradients + interventions) of the segmenter's region, as heat levels."""

from __future__ import annotations

from typing import Any

from monailabel.interfaces.config import TaskConfig
from monailabel.interfaces.tasks.infer_v2 import InferTask

from ..catalog import configured_models, registered_methods
from ..infers import ExplainTask
from ..labels import declared_labels
from ..options import OptionTable, levels_option, seed_option, target_option

METHOD = "dea"
PREFIX = "fused"


class ExplainDea(TaskConfig):
    """The fused map: gradient evidence where it is stable and agrees with occlusion, occlusion elsewhere."""

    def init(self, name: str, model_dir: str, conf: dict[str, str], planner: Any, **kwargs: Any) -> None:
        super().init(name, model_dir, conf, planner, **kwargs)
        self.settings = kwargs["settings"]
        self.models = configured_models(self.settings, "segmenter")
        self.enabled = METHOD in registered_methods() and bool(self.models.roles)
        self.labels = declared_labels(PREFIX, self.settings.default_levels)

    def infer(self) -> InferTask | dict[str, InferTask]:
        if not self.enabled:
            return {}
        options = OptionTable([
            target_option(*self.models.labels()),
            levels_option(self.settings.default_levels),
            seed_option(),
        ])
        return {
            self.name: ExplainTask(
                method=METHOD,
                prefix=PREFIX,
                name=self.name,
                settings=self.settings,
                model_paths=self.models.paths,
                labels=self.labels,
                options=options,
                description="Dual-evidence fusion of the segmenter's region (Seg-Grad-CAM + occlusion) as heat levels",
                channels=self.models.channels(),
            )
        }

    def trainer(self) -> None:
        return None
