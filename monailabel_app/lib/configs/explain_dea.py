"""``explain_dea``: dual-evidence fusion (gradients + interventions) of the segmenter's region, as heat levels."""

from __future__ import annotations

from ..config_base import ExplanationConfig
from ..options import Option, levels_option, seed_option, target_option


class ExplainDea(ExplanationConfig):
    """The fused map: gradient evidence where it is stable and agrees with occlusion, occlusion elsewhere."""

    roles = ("segmenter",)
    methods = ("dea",)
    prefix = "fused"
    description = "Dual-evidence fusion of the segmenter's region (Seg-Grad-CAM + occlusion) as heat levels"
    needs_layers = True  # Seg-Grad-CAM: not offered for an nnU-Net segmenter

    def options(self) -> list[Option]:
        return [
            target_option(*self.models.labels()),
            levels_option(self.settings.default_levels),
            seed_option(),
        ]
