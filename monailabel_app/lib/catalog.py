"""What the configured models and the installed core offer: labels, channels, explanation methods.

The TaskConfigs ask here when they build their option tables, so the Slicer client only ever shows
targets the models have and methods the core registers (`voxcause.explainers.METHODS`).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .models import POOL
from .settings import AppSettings

#: Saliency-family methods, in the order the ``explain_saliency`` task offers them.
SALIENCY_METHODS = ("gradcam", "gradcampp", "scorecam", "occlusion")
#: Counterfactual removal methods; the OpenCV ones only when OpenCV is installed.
REMOVALS = ("harmonic", "constant", "navier-stokes", "telea")


@dataclass(frozen=True)
class ModelFacts:
    """What a task needs to know about a model before any request: label names and channel count."""

    labels: tuple[str, ...]
    channels: int | None
    name: str
    #: the card's channel (sequence) names in input order, e.g. ("T1", "T1c", "T2", "FLAIR"); () if unnamed
    channel_names: tuple[str, ...] = ()
    #: the model format beyond voxcause's own (``"nnU-Net v2"`` for an nnU-Net results folder), else ""
    format: str = ""

    @property
    def layer_methods(self) -> bool:
        """Whether layer and gradient methods can see inside the model: not an nnU-Net model, whose windows
        nnU-Net's predictor runs under torch.inference_mode (the core refuses them there)."""
        return not self.format.startswith("nnU-Net")


def describe_model(model: Any) -> dict[str, Any]:
    """What a reply says about the model that ran: its name and source, plus the core's ``info`` where the
    model has one (nnU-Net: format, trainer, configuration, folds, patch size, spacing, ``mirroring`` false)."""
    card = model.card
    described: dict[str, Any] = {"name": str(card.name), "source": str(card.source) if card.source else None}
    described.update(getattr(model, "info", None) or {})
    return described


def model_facts(path: Path | None, role: str) -> ModelFacts | None:
    """Labels/channels of the model at ``path`` (loaded once into the shared pool), None if not configured."""
    if path is None or not path.exists():
        return None
    with POOL.use(path, role=role) as model:
        card = model.card
        labels = tuple(card.labels) if card.labels else ()
        names = tuple(str(name) for name in card.channels) if isinstance(card.channels, tuple | list) else ()
        return ModelFacts(labels=labels, channels=card.channel_count, name=str(card.name or path.parent.name),
                          channel_names=names, format=str(describe_model(model).get("format", "")))


def registered_methods() -> tuple[str, ...]:
    """Explanation methods the installed core registers."""
    from voxcause.explainers import METHODS

    return tuple(METHODS)


def removal_methods() -> tuple[str, ...]:
    has_cv2 = importlib.util.find_spec("cv2") is not None
    return tuple(name for name in REMOVALS if has_cv2 or name in ("harmonic", "constant"))


def has_counterfactual() -> bool:
    try:
        from voxcause.counterfactual import counterfactual  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Models:
    """The configured models a task may use, by role, with their facts."""

    paths: dict[str, Path | None]
    facts: dict[str, ModelFacts]

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self.facts)

    def labels(self) -> list[tuple[str, ...]]:
        return [facts.labels for facts in self.facts.values()]

    def channels(self) -> int | None:
        """The input channel count all these models share (None if they differ or are unknown)."""
        counts = {facts.channels for facts in self.facts.values()}
        return counts.pop() if len(counts) == 1 else None

    def with_layer_methods(self) -> Models:
        """Only the models layer and gradient methods can see inside (`ModelFacts.layer_methods`)."""
        kept = {role: facts for role, facts in self.facts.items() if facts.layer_methods}
        return Models(paths={role: self.paths[role] for role in kept}, facts=kept)


def configured_models(settings: AppSettings, *roles: str) -> Models:
    """The models of ``roles`` that are configured and load, in the given order."""
    all_paths = {"segmenter": settings.segmenter, "classifier": settings.classifier}
    paths = {role: all_paths[role] for role in roles}
    facts = {}
    for role in roles:
        found = model_facts(paths[role], role)
        if found is not None:
            facts[role] = found
    return Models(paths={role: paths[role] for role in facts}, facts=facts)
