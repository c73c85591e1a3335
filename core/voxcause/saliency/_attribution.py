"""The result type every explainer returns.

The core defines ``voxcause.explanation.Attribution``; until it is importable (the core and the saliency
family are written in parallel) an identical dataclass stands in, so the methods and their tests run either
way. Remove the fallback once the core lands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

try:  # pragma: no cover - depends on which parts of the package exist
    from ..explanation import Attribution  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover

    @dataclass
    class Attribution:  # type: ignore[no-redef]
        """A map on the model grid (higher = more responsible) plus masks, statistics and details."""

        map: torch.Tensor
        masks: dict[str, torch.Tensor] = field(default_factory=dict)
        stats: dict[str, Any] = field(default_factory=dict)
        details: dict[str, Any] = field(default_factory=dict)


__all__ = ["Attribution"]
