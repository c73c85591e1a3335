"""Where a model wants its channel axis: ``channels_first`` (PyTorch, MONAI: ``NCHW``/``NCDHW``) or
``channels_last`` (Keras/TensorFlow exports: ``NHWC``/``NDHWC``).

voxcause works in ``(B, C, *spatial)`` throughout; a channels-last model gets its inputs moved to
``(B, *spatial, C)`` just before the call, and its outputs of the input's rank (segmentation maps) moved back.
The layout comes from, in order: ``--layout`` / a card's ``layout``, the ONNX input signature (which also gives a
fixed input grid and channel count), or — for TorchScript and torch.export files, whose signature has no shapes —
a probe: a model that fails on ``(B, C, *spatial)`` and runs on ``(B, *spatial, C)`` is channels-last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import InputError

CHANNELS_FIRST = "channels_first"
CHANNELS_LAST = "channels_last"
#: Every spelling a card or ``--layout`` may use, and the layout it means.
LAYOUT_NAMES = {
    CHANNELS_FIRST: CHANNELS_FIRST, "nchw": CHANNELS_FIRST, "ncdhw": CHANNELS_FIRST, "ncw": CHANNELS_FIRST,
    CHANNELS_LAST: CHANNELS_LAST, "nhwc": CHANNELS_LAST, "ndhwc": CHANNELS_LAST, "nwc": CHANNELS_LAST,
}
#: A channel axis holds at most this many entries (RGBA, or four MRI sequences); spatial axes are larger.
MAX_SIGNATURE_CHANNELS = 4


def parse_layout(value: Any, where: str = "") -> str | None:
    """``channels_first``/``channels_last`` (or NCHW, NHWC, NCDHW, NDHWC, any case) -> the layout; None stays None."""
    if value is None or value == "":
        return None
    layout = LAYOUT_NAMES.get(str(value).strip().lower())
    if layout is None:
        raise InputError(
            f"unknown layout {value!r}{where} — use channels_first (NCHW/NCDHW) or channels_last (NHWC/NDHWC)"
        )
    return layout


def layout_name(layout: str, spatial_dims: int) -> str:
    """The letters for messages: ``NHWC`` for a 2D channels-last model, ``NCDHW`` for a 3D channels-first one."""
    spatial = {1: "W", 2: "HW", 3: "DHW"}.get(spatial_dims, "S" * spatial_dims)
    return f"N{spatial}C" if layout == CHANNELS_LAST else f"NC{spatial}"


@dataclass(frozen=True)
class InputSignature:
    """What a model file declares about its input: layout, channel count and fixed grid (None: not declared)."""

    layout: str | None = None
    channels: int | None = None
    spatial_size: tuple[int, ...] | None = None
    spatial_dims: int | None = None


def _is_channel_axis(dim: Any) -> bool:
    return isinstance(dim, int) and 1 <= dim <= MAX_SIGNATURE_CHANNELS


def signature_from_shape(shape: Sequence[Any]) -> InputSignature:
    """Read an ONNX-style input shape (ints for fixed axes, names or None for free ones), batch axis first.

    ``[N, 240, 240, 3]`` is channels-last 2D with 3 channels on a 240x240 grid; ``[N, 1, 96, 96, 96]`` is
    channels-first 3D. A small fixed last axis after a large or free second axis means channels-last; anything
    else (including an ambiguous ``[1, 3, 3, 3]``) is read as channels-first, PyTorch's convention.
    """
    dims = list(shape)
    if len(dims) < 3:
        return InputSignature()
    second, last = dims[1], dims[-1]
    channels_last = _is_channel_axis(last) and not _is_channel_axis(second)
    channels, spatial = (last, dims[1:-1]) if channels_last else (second, dims[2:])
    fixed = tuple(spatial) if spatial and all(isinstance(d, int) and d > 0 for d in spatial) else None
    return InputSignature(
        layout=CHANNELS_LAST if channels_last else (CHANNELS_FIRST if _is_channel_axis(second) else None),
        channels=channels if isinstance(channels, int) and channels > 0 else None,
        spatial_size=fixed,
        spatial_dims=len(dims) - 2,
    )


def to_model_layout(inputs: torch.Tensor, layout: str) -> torch.Tensor:
    """(B, C, *spatial) -> what the model takes: unchanged, or (B, *spatial, C) for channels-last."""
    return inputs.movedim(1, -1) if layout == CHANNELS_LAST else inputs


def from_model_layout(output: Any, layout: str, input_rank: int) -> Any:
    """A channels-last model's outputs of the input's rank (per-voxel maps) back to (B, C, *spatial).

    Outputs of another rank (class scores ``(B, C)``) are left alone; tuples and dicts are mapped entry by entry.
    """
    if layout != CHANNELS_LAST:
        return output
    if isinstance(output, torch.Tensor):
        return output.movedim(-1, 1) if output.ndim == input_rank else output
    if isinstance(output, dict):
        return {key: from_model_layout(value, layout, input_rank) for key, value in output.items()}
    if isinstance(output, list | tuple):
        return type(output)(from_model_layout(value, layout, input_rank) for value in output)
    return output
