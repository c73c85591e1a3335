"""How much of a map lies on a known cause: the share the known-cause tests assert on."""

from __future__ import annotations

import numpy as np
import torch

from ..evaluate.metrics import relevance_mass


def positive_share(attribution: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor) -> float:
    """Share of the map's positive mass that lies inside ``mask``: `voxcause.evaluate.relevance_mass` of the
    positive part, as the benchmark's ``mass_inside`` column (NaN for an empty mask or no positive mass)."""
    values = attribution.detach().cpu().numpy() if isinstance(attribution, torch.Tensor) else np.asarray(attribution)
    return relevance_mass(np.clip(values, 0, None), mask)
