"""The models the panel offers: the sample models shipped with `voxcause`, found without importing it.

Why not `import voxcause`: that imports torch, which takes seconds and may not be installed yet when the panel
opens; the sample cards are plain JSON files inside the installed package, so we only locate the package.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One model the user can pick: its card and what the panel shows about it."""

    name: str
    path: Path
    task: str = ""
    labels: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    description: str = ""
    spatial_dims: int | None = None

    @property
    def channel_count(self) -> int:
        """Number of input volumes the model takes: one per channel the card lists (1 when it lists none)."""
        return max(1, len(self.channels))


def samples_root() -> Path | None:
    """`<voxcause package>/samples/models`, or None when voxcause is not installed in this Python."""
    try:
        spec = importlib.util.find_spec("voxcause")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        root = Path(location) / "samples" / "models"
        if root.is_dir():
            return root
    return None


#: Files the panel reads as model cards (JSON or YAML, as the core does).
CARD_SUFFIXES = (".json", ".yaml", ".yml")


def _load_mapping(path: Path) -> object:
    """A card's content: JSON, or YAML (PyYAML, which voxcause itself requires)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return json.loads(text)
    try:
        import yaml
    except ImportError as exc:
        raise ValueError("reading a YAML card needs PyYAML (installed with voxcause)") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:  # a YAML syntax error: one line for the panel
        raise ValueError(" ".join(str(exc).split())) from None


def read_card(path: str | Path) -> ModelEntry:
    """The panel's view of one model card (.json/.yaml/.yml). Raises ValueError with the fix for a broken card."""
    path = Path(path)
    try:
        card = _load_mapping(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"Cannot read model card {path}: {exc}. Choose a valid card (.json or .yaml).") from exc
    if not isinstance(card, dict):
        raise ValueError(f"Model card {path} is not a mapping of fields. Choose a valid card (.json or .yaml).")
    channels = card.get("channels") or ()
    if isinstance(channels, int):
        channels = tuple(f"channel {i + 1}" for i in range(channels))
    size = card.get("spatial_size")
    network = card.get("network") if isinstance(card.get("network"), dict) else {}
    dims = len(size) if isinstance(size, list) and size else network.get("spatial_dims")
    return ModelEntry(
        name=str(card.get("name") or path.parent.name),
        path=path,
        task=str(card.get("task", "")),
        labels=tuple(str(x) for x in card.get("labels") or ()),
        channels=tuple(str(x) for x in channels),
        description=str(card.get("description", "")),
        spatial_dims=int(dims) if isinstance(dims, int) else None,
    )


def read_bundle(folder: str | Path) -> ModelEntry:
    """The panel's view of a MONAI bundle folder (its configs/metadata.json, as the core reads it)."""
    folder = Path(folder)
    metadata_path = folder / "configs" / "metadata.json"
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        data_format = metadata.get("network_data_format", {})
        inputs = data_format.get("inputs", {}).get("image", {})
        channel_def = data_format.get("outputs", {}).get("pred", {}).get("channel_def") or {}
        count = int(inputs.get("num_channels", 1))
        labels = tuple(str(channel_def[k]) for k in sorted(channel_def, key=int))
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise ValueError(f"Cannot read MONAI bundle {folder}: {exc}. Choose a bundle with configs/metadata.json.") from exc
    return ModelEntry(
        name=str(metadata.get("name") or folder.name),
        path=folder,
        labels=labels,
        channels=tuple(f"channel {i + 1}" for i in range(count)) if count > 1 else (),
        description=str(metadata.get("description", "")),
    )


def read_model(path: str | Path) -> ModelEntry | None:
    """What the panel can know about a chosen model without loading it: a card (.json/.yaml/.yml) or a MONAI
    bundle folder; None for a bare model file (TorchScript/ONNX/.pt2: one input channel unless a card says
    otherwise). Raises ValueError with the fix for a broken card or bundle."""
    path = Path(path)
    if path.is_dir():
        return read_bundle(path)
    if path.suffix.lower() in CARD_SUFFIXES and path.is_file():
        return read_card(path)
    return None


def list_sample_models(root: str | Path | None = None) -> list[ModelEntry]:
    """Every `<root>/<name>/card.json` that reads, sorted by name; [] when there is none.

    Args:
        root: folder holding one folder per model; default `samples_root()`.
    """
    folder = Path(root) if root is not None else samples_root()
    if folder is None or not folder.is_dir():
        return []
    entries = []
    for card in sorted(folder.glob("*/card.json")):
        try:
            entries.append(read_card(card))
        except ValueError:
            continue  # a broken sample must not hide the others
    return sorted(entries, key=lambda e: e.name)
