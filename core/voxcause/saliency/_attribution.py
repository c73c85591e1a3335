"""The result type every explainer returns (``voxcause.explanation.Attribution``), re-exported for the family."""

from __future__ import annotations

from ..explanation import Attribution

__all__ = ["Attribution"]
