"""``probability``: the segmenter's own probability of a label, and its ensemble's uncertainty."""

from __future__ import annotations

from typing import Any

from monailabel.interfaces.config import TaskConfig
from monailabel.interfaces.tasks.infer_v2 import InferTask

from ..catalog import model_facts
from ..infers.probability import PROBABILITY_BANDS, SHOW, ProbabilityTask, band_names
from ..options import Choice, OptionTable, target_option


class Probability(TaskConfig):
    """Per-voxel probability (and fold uncertainty) of the segmenter, in bands, with the float volumes kept."""

    def init(self, name: str, model_dir: str, conf: dict[str, str], planner: Any, **kwargs: Any) -> None:
        super().init(name, model_dir, conf, planner, **kwargs)
        self.settings = kwargs["settings"]
        self.facts = model_facts(self.settings.segmenter, "segmenter")
        label = next((name for name in (self.facts.labels if self.facts else ())[1:]), "label")
        self.labels = {name: k for k, name in enumerate(band_names(PROBABILITY_BANDS, f"P({label})"), start=1)}

    def infer(self) -> InferTask | dict[str, InferTask]:
        if self.facts is None:
            return {}
        options = OptionTable([
            target_option(self.facts.labels),
            Choice("show", SHOW, "probability: the label's probability in bands; uncertainty: its standard "
                   "deviation across the ensemble's folds (nnU-Net) and flips"),
            Choice("flips", ("off", "on"), "on: the uncertainty also spreads over test-time flips (8x the passes)"),
        ])
        return {
            self.name: ProbabilityTask(
                name=self.name,
                settings=self.settings,
                model_paths={"segmenter": self.settings.segmenter},
                labels=self.labels,
                options=options,
                description=f"Probability and uncertainty of the {self.facts.name} segmenter, per voxel",
                channels=self.facts.channels,
            )
        }

    def trainer(self) -> None:
        return None
