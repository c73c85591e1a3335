"""``explain_saliency``: the Grad-CAM family and occlusion as heat levels (methods the core registers)."""

from __future__ import annotations

from typing import Any

from monailabel.interfaces.config import TaskConfig
from monailabel.interfaces.tasks.infer_v2 import InferTask

from ..catalog import SALIENCY_METHODS, configured_models, registered_methods
from ..infers import ExplainTask
from ..labels import declared_labels
from ..options import Choice, OptionTable, levels_option, model_option, target_option

PREFIX = "saliency"


class ExplainSaliency(TaskConfig):
    """Where the model's gradients (or single-window occlusion) point; cheap, not causal."""

    def init(self, name: str, model_dir: str, conf: dict[str, str], planner: Any, **kwargs: Any) -> None:
        super().init(name, model_dir, conf, planner, **kwargs)
        self.settings = kwargs["settings"]
        self.models = configured_models(self.settings, "segmenter", "classifier")
        registered = registered_methods()
        self.methods = tuple(method for method in SALIENCY_METHODS if method in registered)
        self.enabled = bool(self.methods) and bool(self.models.roles)
        self.labels = declared_labels(PREFIX, self.settings.default_levels)

    def infer(self) -> InferTask | dict[str, InferTask]:
        if not self.enabled:
            return {}
        options = OptionTable([
            Choice("method", self.methods, "saliency method"),
            model_option(self.models.roles),
            target_option(*self.models.labels()),
            levels_option(self.settings.default_levels),
        ])
        return {
            self.name: ExplainTask(
                method=self.methods[0],
                prefix=PREFIX,
                name=self.name,
                settings=self.settings,
                model_paths=self.models.paths,
                labels=self.labels,
                options=options,
                description=f"Saliency ({', '.join(self.methods)}) as heat levels",
                channels=self.models.channels(),
            )
        }

    def trainer(self) -> None:
        return None
