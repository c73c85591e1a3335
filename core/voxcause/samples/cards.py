"""The committed sample models: where their cards are, and a minimal card loader for tests and training.

The core's `voxcause.load_model(card)` is the real loader; `load_network` here only builds the card's
``network`` (``_target_`` + keyword arguments, as in MONAI bundle configs) and loads ``weights`` into it, so
the samples can be checked without the core.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import InputError

MODELS_DIR = Path(__file__).parent / "models"
KNOWN_MODELS = ("classifier3d", "segmenter3d", "classifier2d", "shortcut3d")
# the committed ones: a folder without its card (e.g. while retraining) does not count
MODEL_NAMES = tuple(n for n in KNOWN_MODELS if (MODELS_DIR / n / "card.json").is_file())


def model_path(name: str) -> Path:
    """Path of the model card ``models/<name>/card.json`` of a committed sample model.

    Names: classifier3d, segmenter3d, classifier2d, shortcut3d.
    """
    if name not in KNOWN_MODELS:
        raise InputError(f"unknown sample model {name!r}: use one of {', '.join(MODEL_NAMES)}")
    path = MODELS_DIR / name / "card.json"
    if not path.is_file():
        raise InputError(f"sample model {name} has no card at {path}: run python scripts/train_samples.py")
    return path


def read_card(name_or_path: str | Path) -> dict:
    """The card as a dict, with ``weights`` and ``metrics`` resolved to absolute paths."""
    path = model_path(name_or_path) if str(name_or_path) in KNOWN_MODELS else Path(name_or_path)
    card = json.loads(path.read_text(encoding="utf-8"))
    for key in ("weights", "metrics"):
        if key in card:
            card[key] = str((path.parent / card[key]).resolve())
    return card


def build_network(spec: dict) -> torch.nn.Module:
    """Instantiate ``{"_target_": "module.Class", **kwargs}`` (trusted network classes only)."""
    from ..models.trust import build

    return build(dict(spec))


def load_network(name_or_path: str | Path) -> tuple[torch.nn.Module, dict]:
    """(network in eval mode with the card's weights, card dict)."""
    card = read_card(name_or_path)
    network = build_network(card["network"])
    network.load_state_dict(torch.load(card["weights"], map_location="cpu", weights_only=True))
    return network.eval(), card
