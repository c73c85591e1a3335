"""``explain_saliency``: the Grad-CAM family and occlusion as heat levels (methods the core registers)."""

from __future__ import annotations

from ..catalog import SALIENCY_METHODS
from ..config_base import ExplanationConfig
from ..options import Choice, Option, levels_option, model_option, target_option


class ExplainSaliency(ExplanationConfig):
    """Where the model's gradients (or single-window occlusion) point; cheap, not causal."""

    roles = ("segmenter", "classifier")
    methods = SALIENCY_METHODS
    prefix = "saliency"
    description = "Saliency ({methods}) as heat levels"

    def options(self) -> list[Option]:
        return [
            Choice("method", self.offered, "saliency method"),
            model_option(self.models.roles),
            target_option(*self.models.labels()),
            levels_option(self.settings.default_levels),
        ]
