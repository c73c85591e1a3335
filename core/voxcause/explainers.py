"""The registry of explanation methods, by the names the command line uses.

Entries are import strings so a method's dependencies load only when it is used.
"""

from __future__ import annotations

import importlib

from .errors import InputError

METHODS: dict[str, str] = {
    "rex": "voxcause.causal:CausalResponsibility",
    "gradcam": "voxcause.saliency:GradCAM",
    "seggradcam": "voxcause.saliency:SegGradCAM",
    "gradcampp": "voxcause.saliency:GradCAMPlusPlus",
    "scorecam": "voxcause.saliency:ScoreCAM",
    "occlusion": "voxcause.saliency:Occlusion",
    "dea": "voxcause.fusion:DualEvidence",
}


def available_methods() -> list[str]:
    return sorted(METHODS)


def explainer_class(method: str):
    """The explainer class registered as ``method``."""
    if method not in METHODS:
        raise InputError(f"unknown method {method!r} — use one of {', '.join(available_methods())}")
    module_name, _, class_name = METHODS[method].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
