"""The argument types every part of voxcause shares, declared once (as Captum's ``_utils/typing.py``)."""

from __future__ import annotations

from collections.abc import Callable

from .targets import ClassTarget, RegionTarget

# ``callback(stage, fraction)``: what a long computation reports, stage in words and fraction done in [0, 1].
Progress = Callable[[str, float], None]
# What is explained: a class, or a class inside a region (`voxcause.targets.resolve_target` makes one).
Target = ClassTarget | RegionTarget
# What a removed voxel becomes: a name of `voxcause.removal.REMOVALS`, or a number (a constant).
Removal = str | float

__all__ = ["Progress", "Removal", "Target"]
