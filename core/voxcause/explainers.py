"""The one registry of explanation methods, by the names the command line, the Slicer module and the MONAI
Label app use, and the one way to build an explainer from plain options.

Entries are import strings so a method's dependencies load only when it is used. Every method derives from
`voxcause.attribution.Explainer` and declares its options (``cls.options``, a `voxcause.options.Options`
dataclass): nothing here inspects signatures.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import InputError
from .options import Option

#: The method run when none is named: ``voxcause explain`` / ``batch`` without ``--method``, a batch `Job`,
#: ``counterfactual --mask-from-explanation`` without a METHOD; published as ``default_method`` by
#: ``voxcause methods --json`` for the Slicer module, which cannot import the core.
DEFAULT_METHOD = "rex"

METHODS: dict[str, str] = {
    "rex": "voxcause.causal:CausalResponsibility",
    "gradcam": "voxcause.saliency:GradCAM",
    "seggradcam": "voxcause.saliency:SegGradCAM",
    "gradcampp": "voxcause.saliency:GradCAMPlusPlus",
    "layercam": "voxcause.saliency:LayerCAM",
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


def declared_options(method: str) -> tuple[Option, ...]:
    """The options ``method`` declares (its ``options`` dataclass's fields)."""
    return explainer_class(method).options.declared()


def make_explainer(method: str, model: Any, options: dict | None = None, *, supplied: dict | None = None):
    """Build ``method`` for ``model``.

    Args:
        method: a registry name (``METHODS``).
        model: a ``LoadedModel`` or ``nn.Module``.
        options: the user's options; one the method does not declare, or a value outside its bounds or
            choices, is an InputError (code ``bad_option``) naming what it accepts.
        supplied: values the caller knows (``seed``, ``spacing``, ``context``), passed only to methods that
            declare them.
    """
    user = dict(options or {})
    names = {option.name for option in declared_options(method)}
    extra = {key: value for key, value in (supplied or {}).items() if key in names and key not in user}
    return explainer_class(method)(model, **user, **extra)


def catalogue() -> dict[str, dict]:
    """Every method's user options (name, default, help, choices, minimum, maximum, kind) and whether it needs
    a network with named layers, as ``voxcause methods --json`` publishes them for the Slicer panel and the MONAI Label app:
    ``{method: {"needs_network": bool, "options": [...]}}``. A method whose code fails to import is listed with
    an ``error`` instead, so one broken method never hides the others."""
    methods: dict[str, dict] = {}
    for method in available_methods():
        try:
            cls = explainer_class(method)
            options = [option.describe() for option in declared_options(method) if not option.supplied]
        except Exception as error:  # noqa: BLE001 - a method that cannot load is reported, not fatal
            methods[method] = {"error": f"{type(error).__name__}: {error}"}
            continue
        methods[method] = {"needs_network": bool(getattr(cls, "needs_network", False)), "options": options}
    return methods
