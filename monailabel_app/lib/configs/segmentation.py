"""``segmentation``: the sample tumour segmenter (or ``--conf segmenter PATH``)."""

from __future__ import annotations

from typing import Any

from monailabel.interfaces.config import TaskConfig
from monailabel.interfaces.tasks.infer_v2 import InferTask

from ..catalog import model_facts
from ..infers import SegmentationTask
from ..options import OptionTable


class Segmentation(TaskConfig):
    """The segmenter's prediction, one segment per foreground label."""

    def init(self, name: str, model_dir: str, conf: dict[str, str], planner: Any, **kwargs: Any) -> None:
        super().init(name, model_dir, conf, planner, **kwargs)
        self.settings = kwargs["settings"]
        self.facts = model_facts(self.settings.segmenter, "segmenter")
        self.path = self.settings.segmenter
        labels = self.facts.labels if self.facts else ()
        self.labels = {label: value for value, label in enumerate(labels) if value > 0}

    def infer(self) -> InferTask | dict[str, InferTask]:
        if self.facts is None:
            return {}
        return {
            self.name: SegmentationTask(
                name=self.name,
                settings=self.settings,
                model_paths={"segmenter": self.settings.segmenter},
                labels=self.labels,
                options=OptionTable([]),
                description=f"Tumour segmentation by the {self.facts.name} model",
                channels=self.facts.channels,
            )
        }

    def trainer(self) -> None:
        return None
