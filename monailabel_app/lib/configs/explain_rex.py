"""``explain_rex``: causal responsibility (ReX) as heat levels plus the sufficient explanation."""

from __future__ import annotations

from ..config_base import ExplanationConfig
from ..labels import DRAW_LEVELS, DRAW_WHOLE, OUTSIDE_LEVELS
from ..options import Choice, Option, declared_integer, levels_option, model_option, seed_option, target_option


class ExplainRex(ExplanationConfig):
    """Which voxels the decision depends on (actual causality), and a smallest set that suffices."""

    roles = ("segmenter", "classifier")
    methods = ("rex",)
    prefix = "rex"
    extra_labels = (f"sufficient explanation {OUTSIDE_LEVELS}",)
    description = "Causal responsibility (ReX): heat levels of responsibility and the sufficient explanation"
    method_options = ("iterations",)
    fixed_options = {"explanations": ("sufficient",)}

    def options(self) -> list[Option]:
        return [
            model_option(self.models.roles),
            target_option(*self.models.labels()),
            levels_option(self.settings.default_levels),
            declared_integer("rex", "iterations", self.settings.default_iterations),
            seed_option(),
            Choice("draw", (DRAW_LEVELS, DRAW_WHOLE),
                   f"{DRAW_LEVELS}: every heat level whole, the sufficient explanation where no level lies; "
                   f"{DRAW_WHOLE}: the sufficient explanation whole, the levels outside it"),
        ]
