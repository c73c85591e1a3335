"""``explain_rex``: causal responsibility (ReX) as heat levels plus the sufficient explanation."""

from __future__ import annotations

from typing import Any

from monailabel.interfaces.config import TaskConfig
from monailabel.interfaces.tasks.infer_v2 import InferTask

from ..catalog import configured_models, registered_methods
from ..infers import ExplainTask
from ..labels import declared_labels
from ..options import Integer, OptionTable, levels_option, model_option, seed_option, target_option

METHOD = "rex"
PREFIX = "rex"


class ExplainRex(TaskConfig):
    """Which voxels the decision depends on (actual causality), and a smallest set that suffices."""

    def init(self, name: str, model_dir: str, conf: dict[str, str], planner: Any, **kwargs: Any) -> None:
        super().init(name, model_dir, conf, planner, **kwargs)
        self.settings = kwargs["settings"]
        self.models = configured_models(self.settings, "segmenter", "classifier")
        self.enabled = METHOD in registered_methods() and bool(self.models.roles)
        self.labels = declared_labels(PREFIX, self.settings.default_levels, extra=("sufficient explanation",))

    def infer(self) -> InferTask | dict[str, InferTask]:
        if not self.enabled:
            return {}
        options = OptionTable([
            model_option(self.models.roles),
            target_option(*self.models.labels()),
            levels_option(self.settings.default_levels),
            Integer("iterations", self.settings.default_iterations, 1, 200,
                    "random partitions searched; more = smoother map, proportionally more forward passes"),
            seed_option(),
        ])
        return {
            self.name: ExplainTask(
                method=METHOD,
                prefix=PREFIX,
                method_options=("iterations",),
                fixed_options={"explanations": ("sufficient",)},
                name=self.name,
                settings=self.settings,
                model_paths=self.models.paths,
                labels=self.labels,
                options=options,
                description="Causal responsibility (ReX): heat levels of responsibility and the sufficient explanation",
                channels=self.models.channels(),
            )
        }

    def trainer(self) -> None:
        return None
