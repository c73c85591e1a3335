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
        """Number of input volumes the model takes (1 when the card does not say)."""
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


def read_card(path: str | Path) -> ModelEntry:
    """The panel's view of one model card (.json). Raises ValueError with the fix for a broken card."""
    path = Path(path)
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"Cannot read model card {path}: {exc}. Choose a valid card .json file.") from exc
    if not isinstance(card, dict):
        raise ValueError(f"Model card {path} is not a JSON object. Choose a valid card .json file.")
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
