"""Model cards: what a model expects and what its outputs mean.

A card is a JSON or YAML file beside the weights. It names the model (a file, or a network ``_target_`` plus
a state dict) and says what the bare file cannot: the task, the label names, the input channels and their ``layout``
(``channels_first``/NCHW, or ``channels_last``/NHWC for Keras-style exports), the grid (``spatial_size``), the intensity normalisation and the output activation. Paths inside a card are relative
to the card's folder and may not leave it with ``..`` (absolute paths are taken as written); the ``network``
may only name trusted nn.Module classes (`voxcause.models.trust`): a card is data, never code. Bare model files
get the defaults of docs/design.md#models (task from the output
rank, no normalisation, the image's own grid, softmax for C>1 and sigmoid for C=1).

Models trained on patches (most MONAI segmenters) declare ``inference: {sliding_window: {roi_size: [..],
overlap: 0.25, sw_batch_size: 4, mode: gaussian}}``: the image then stays on its own grid (no resizing into
``spatial_size``, which only supplies ``roi_size`` when that is absent) and every forward call runs the network
over overlapping windows with MONAI's ``sliding_window_inference``, as the model was meant to be used.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from .layout import parse_layout
from .trust import check_card_targets

TASKS = ("classification", "segmentation")
ACTIVATIONS = ("softmax", "sigmoid", "none")
RESIZE_MODES = ("resize", "crop_pad")
BLEND_MODES = ("constant", "gaussian")


@dataclass(frozen=True)
class SlidingWindow:
    """How a patch-trained model covers an image larger than its input (MONAI ``sliding_window_inference``)."""

    roi_size: tuple[int, ...]
    overlap: float = 0.25
    sw_batch_size: int = 4
    mode: str = "constant"

    def validate(self, where: str) -> None:
        if not self.roi_size or any(size < 1 for size in self.roi_size):
            raise InputError(f"sliding_window roi_size {list(self.roi_size)}{where} must be positive window edges")
        if not 0.0 <= self.overlap < 1.0:
            raise InputError(f"sliding_window overlap {self.overlap}{where} must be in [0, 1), e.g. 0.25")
        if self.sw_batch_size < 1:
            raise InputError(f"sliding_window sw_batch_size {self.sw_batch_size}{where} must be at least 1")
        if self.mode not in BLEND_MODES:
            raise InputError(f"sliding_window mode {self.mode!r}{where} — use 'constant' or 'gaussian'")


@dataclass(frozen=True)
class HeadCard:
    """What one output head means (models with several outputs have one per head)."""

    task: str | None = None
    labels: tuple[str, ...] | None = None
    activation: str | None = None
    threshold: float = 0.5


@dataclass(frozen=True)
class ModelCard:
    """Everything voxcause needs to know about a model besides its weights."""

    name: str = "model"
    task: str | None = None
    labels: tuple[str, ...] | None = None
    channels: tuple[str, ...] | int | None = None
    layout: str | None = None
    spatial_size: tuple[int, ...] | None = None
    normalize: Any = None
    activation: str | None = None
    resize: str = "resize"
    threshold: float = 0.5
    output: str | int | None = None
    heads: dict[str, HeadCard] = field(default_factory=dict)
    sliding_window: SlidingWindow | None = None
    model: Path | None = None
    network: dict | None = None
    weights: Path | tuple[Path, ...] | None = None  # several files: an ensemble (`voxcause.models.ensemble`)
    description: str = ""
    source: Path | None = None

    @property
    def channel_count(self) -> int | None:
        if self.channels is None:
            return None
        return self.channels if isinstance(self.channels, int) else len(self.channels)

    def with_overrides(self, **overrides: Any) -> ModelCard:
        """A copy with the non-None keyword values replacing the card's (command-line flags win)."""
        values = {key: value for key, value in overrides.items() if value is not None}
        if "labels" in values:
            values["labels"] = tuple(values["labels"])
        if "spatial_size" in values:
            values["spatial_size"] = tuple(int(v) for v in values["spatial_size"])
        if "layout" in values:
            values["layout"] = parse_layout(values["layout"])
        card = replace(self, **values)
        card.validate()
        return card

    def validate(self) -> None:
        where = f" in {self.source}" if self.source else ""
        if self.task is not None and self.task not in TASKS:
            raise InputError(f"unknown task {self.task!r}{where} — use 'classification' or 'segmentation'")
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise InputError(f"unknown activation {self.activation!r}{where} — use softmax, sigmoid or none")
        if self.resize not in RESIZE_MODES:
            raise InputError(f"unknown resize mode {self.resize!r}{where} — use 'resize' or 'crop_pad'")
        if self.sliding_window is not None:
            self.sliding_window.validate(where)
            if self.task == "classification":
                raise InputError(
                    f"sliding_window{where} needs a segmentation model (window outputs are stitched voxel by "
                    "voxel) — remove 'inference.sliding_window' or set task: segmentation"
                )


def sliding_window_from(spec: Any, spatial_size: tuple[int, ...] | None, where: str) -> SlidingWindow | None:
    """The card's ``inference.sliding_window`` block (``roi_size`` defaults to ``spatial_size``), or None."""
    if spec is None or spec is False:
        return None
    if not isinstance(spec, dict):
        raise InputError(f"inference.sliding_window{where} must be a mapping with roi_size, overlap, sw_batch_size")
    roi = spec.get("roi_size") or spatial_size
    if not roi:
        raise InputError(f"inference.sliding_window{where} has no roi_size — add the patch size the model takes")
    try:
        window = SlidingWindow(
            roi_size=tuple(int(v) for v in roi),
            overlap=float(spec.get("overlap", 0.25)),
            sw_batch_size=int(spec.get("sw_batch_size", 4)),
            mode=str(spec.get("mode", "constant")),
        )
    except (TypeError, ValueError):
        raise InputError(f"inference.sliding_window{where} has a non-numeric value — check roi_size/overlap") from None
    window.validate(where)
    return window


def _relative(folder: Path, value: Any, key: str) -> Path | None:
    """A path written in the card: absolute as written, else inside the card's folder (``..`` may not leave it)."""
    if value in (None, ""):
        return None
    written = Path(str(value))
    if written.is_absolute():
        return written.resolve()
    if ".." in Path(os.path.normpath(written)).parts:  # lexically: a link the user made inside the folder is theirs
        raise InputError(
            f"the card's {key!r} path {str(value)[:120]!r} leaves the card's folder {folder} — put the file beside "
            "the card, or write its absolute path"
        )
    return (folder / written).resolve()


def _weights(folder: Path, value: Any) -> Path | tuple[Path, ...] | None:
    """``weights``: one file, or a list of files of the same network (an ensemble averaged as one model)."""
    if not isinstance(value, list):
        return _relative(folder, value, "weights")
    files = tuple(_relative(folder, item, "weights") for item in value)
    if not files or None in files:
        raise InputError(f"the card's 'weights' list {value!r} holds an empty entry — list one state-dict file per "
                         "ensemble member")
    return files[0] if len(files) == 1 else files


def read_card(path: str | Path) -> ModelCard:
    """Parse a model card file (JSON or YAML) into a validated `ModelCard`."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
        data = json.loads(text) if source.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise InputError(f"cannot read model card {source}: {error} — check the JSON/YAML syntax") from None
    if not isinstance(data, dict):
        raise InputError(f"model card {source} is not a mapping — write 'key: value' fields (see README)")
    if not any(key in data for key in ("model", "network")):
        raise InputError(f"model card {source} names no model — add 'model: FILE' or 'network' + 'weights'")
    check_card_targets(data.get("network"), f" {source}")  # before anything else: a card never runs code
    channels = data.get("channels")
    spatial_size = tuple(int(v) for v in data["spatial_size"]) if data.get("spatial_size") else None
    inference = data.get("inference") or {}
    if not isinstance(inference, dict):
        raise InputError(f"'inference' in model card {source} must be a mapping, e.g. {{sliding_window: {{..}}}}")
    window = sliding_window_from(inference.get("sliding_window"), spatial_size, f" in {source}")
    heads = {
        str(name): HeadCard(
            task=spec.get("task"),
            labels=tuple(spec["labels"]) if spec.get("labels") else None,
            activation=spec.get("activation"),
            threshold=float(spec.get("threshold", 0.5)),
        )
        for name, spec in (data.get("outputs") or {}).items()
    }
    card = ModelCard(
        name=str(data.get("name", source.stem)),
        task=data.get("task"),
        labels=tuple(data["labels"]) if data.get("labels") else None,
        channels=channels if isinstance(channels, int) or channels is None else tuple(channels),
        layout=parse_layout(data.get("layout"), f" in {source}"),
        # A windowed model sees the image on its own grid: spatial_size only gave the default roi_size.
        spatial_size=None if window else spatial_size,
        normalize=data.get("normalize"),
        activation=data.get("activation"),
        resize=data.get("resize", "resize"),
        threshold=float(data.get("threshold", 0.5)),
        output=data.get("output"),
        heads=heads,
        sliding_window=window,
        model=_relative(source.parent, data.get("model"), "model"),
        network=data.get("network"),
        weights=_weights(source.parent, data.get("weights")),
        description=str(data.get("description", "")),
        source=source.resolve(),
    )
    card.validate()
    return card
