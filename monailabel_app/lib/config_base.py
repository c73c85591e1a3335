"""`ExplanationConfig`: the one skeleton behind the explain and counterfactual task configs.

Each of ``lib/configs/explain_*.py`` and ``counterfactual.py`` is a short declaration — which model roles
it explains, which core methods it offers, its segment-name prefix, its description and its options — and
this base does the rest: load the models' facts, decide whether the task is offered (the core registers a
method and a model loads), declare the labels for /info, and build the infer task.

This module sits outside ``lib/configs`` and the class is abstract (`options` is left to the
declarations), so main.py's discovery (``get_class_names``: concrete TaskConfig subclasses of that
package) never offers the base itself as a task.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from monailabel.interfaces.config import TaskConfig
from monailabel.interfaces.tasks.infer_v2 import InferTask

from .catalog import configured_models, registered_methods
from .infers import ExplainTask
from .infers.base import VoxcauseInferTask
from .labels import declared_labels
from .options import Option, OptionTable


class ExplanationConfig(TaskConfig):
    """Base of a declared explanation task; subclasses set the class attributes and `options`."""

    #: Model roles the task may explain, in the order the ``explained_model`` option offers them.
    roles: ClassVar[tuple[str, ...]] = ()
    #: Core methods the task can run (`voxcause.explainers.METHODS` names); those the core registers are offered.
    methods: ClassVar[tuple[str, ...]] = ()
    #: Start of every segment name (unique across the app).
    prefix: ClassVar[str] = ""
    #: Named masks drawn after the heat levels (e.g. ``sufficient explanation``).
    extra_labels: ClassVar[tuple[str, ...]] = ()
    #: The /info description; ``{methods}`` is replaced by the offered methods.
    description: ClassVar[str] = ""
    #: Request options passed on to the explainer, and explainer options the task always sets.
    method_options: ClassVar[tuple[str, ...]] = ()
    fixed_options: ClassVar[dict[str, Any]] = {}
    #: The infer task class built by `infer`.
    task_class: ClassVar[type[VoxcauseInferTask]] = ExplainTask
    #: Whether every method of the task reads the network's layers or gradients: models the core refuses them
    #: for (nnU-Net) are then not offered, and a task left with no model is not offered at all.
    needs_layers: ClassVar[bool] = False

    def init(self, name: str, model_dir: str, conf: dict[str, str], planner: Any, **kwargs: Any) -> None:
        super().init(name, model_dir, conf, planner, **kwargs)
        self.settings = kwargs["settings"]
        self.models = configured_models(self.settings, *self.roles)
        if self.needs_layers:
            self.models = self.models.with_layer_methods()
        registered = registered_methods()
        self.offered = tuple(method for method in self.methods if method in registered)
        self.enabled = self.core_offers() and bool(self.models.roles)
        self.labels = self.declared_labels()

    # ---- what a declaration may override ----------------------------------------------------------------
    @abstractmethod
    def options(self) -> list[Option]:
        """The task's options table, in the order the client shows it."""

    def core_offers(self) -> bool:
        """Whether the installed core has what the task runs (by default: one of its methods)."""
        return bool(self.offered)

    def declared_labels(self) -> dict[str, int]:
        """The labels /info declares for the default options (the reply says what was drawn)."""
        return declared_labels(self.prefix, self.settings.default_levels, extra=self.extra_labels)

    def task_arguments(self) -> dict[str, Any]:
        """Arguments of `task_class` beyond the common ones."""
        return {"method": self.offered[0], "prefix": self.prefix, "method_options": self.method_options,
                "fixed_options": dict(self.fixed_options)}

    # ---- MONAI Label's TaskConfig interface -------------------------------------------------------------
    def infer(self) -> InferTask | dict[str, InferTask]:
        if not self.enabled:
            return {}
        task = self.task_class(
            name=self.name,
            settings=self.settings,
            model_paths=self.models.paths,
            labels=self.labels,
            options=OptionTable(self.options()),
            description=self.description.format(methods=", ".join(self.offered)),
            channels=self.models.channels(),
            **self.task_arguments(),
        )
        return {self.name: task}

    def trainer(self) -> None:
        return None
