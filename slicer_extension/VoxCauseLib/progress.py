"""Read the progress lines the `voxcause` command prints with `--progress json`.

The core prints one JSON object per line on stderr: `{"event": "progress", "stage": ..., "fraction": ...}`,
then `{"event": "done", "out": DIR}` or `{"event": "error", "message": ..., "code": ...}` (`code`: the core's
`voxcause.errors.ErrorCode` of bad input, which `Failed.panel_message` words in the panel's terms). Anything else (a warning, a
traceback) is kept as a `Log` line so the panel can show it; nothing a process prints can raise here.
"""

from __future__ import annotations

import dataclasses
import json
import math

from .options import Method


@dataclasses.dataclass(frozen=True)
class Progress:
    """Work is under way: `stage` is the text for the progress bar, `fraction` in [0, 1]."""

    stage: str
    fraction: float


@dataclasses.dataclass(frozen=True)
class Done:
    """The run finished and wrote its results to `out`."""

    out: str


#: The core's error codes (`voxcause.errors.ErrorCode` values) that the panel says in its own words: the core's
#: message advises command-line flags, the panel names its own controls.
PANEL_WORDING = {
    "needs_network": "The chosen method reads the network's layers and gradients, which this model (TorchScript, "
    f"ONNX or nnU-Net) does not expose. Choose '{Method.REX.label()}' or '{Method.OCCLUSION.label()}' as the "
    "Method, or a model card that names the network.",
}


@dataclasses.dataclass(frozen=True)
class Failed:
    """The run stopped with a message for the user (the core's one-line error) and the core's error code ("" when
    the core gave none)."""

    message: str
    code: str = ""

    def panel_message(self) -> str:
        """What the panel shows: its own wording for a code it knows, else the core's message."""
        return PANEL_WORDING.get(self.code, self.message)


@dataclasses.dataclass(frozen=True)
class Log:
    """Any other output line, shown in the log area as is."""

    text: str


Event = Progress | Done | Failed | Log


def parse_line(line: str) -> Event | None:
    """One output line as an event; None for a blank line.

    >>> parse_line('{"event": "progress", "stage": "causal search", "fraction": 0.42}')
    Progress(stage='causal search', fraction=0.42)
    """
    text = line.strip()
    if not text:
        return None
    if not text.startswith("{"):
        return Log(text)
    try:
        data = json.loads(text)
    except ValueError:
        return Log(text)
    if not isinstance(data, dict):
        return Log(text)
    kind = data.get("event")
    if kind == "progress":
        return Progress(stage=str(data.get("stage", "")), fraction=_fraction(data.get("fraction")))
    if kind == "done":
        return Done(out=str(data.get("out", "")))
    if kind == "error":
        return Failed(message=str(data.get("message") or "the run failed without a message"),
                      code=str(data.get("code") or ""))
    return Log(text)


def _fraction(value: object) -> float:
    """Clamp to [0, 1]; anything that is not a finite number counts as 0 (the bar must never jump back)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    if not math.isfinite(number):
        return 0.0
    return min(1.0, max(0.0, number))


def percent(event: Progress) -> int:
    """Progress-bar value in 0..100."""
    return int(round(event.fraction * 100))
