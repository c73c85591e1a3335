"""Progress for people (a bar on stderr) and for programs (JSON lines on stderr, read by the Slicer module).

Both see a monotone fraction, people also the time left (`voxcause.progress`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ..progress import BarProgress, Monotone


class JsonProgress:
    """One JSON object per line: {"event": "progress", "stage": ..., "fraction": ...}."""

    def __init__(self) -> None:
        self._last = (None, -1.0)

    def __call__(self, stage: str, fraction: float) -> None:
        fraction = round(float(fraction), 3)
        if (stage, fraction) == self._last:
            return
        self._last = (stage, fraction)
        emit({"event": "progress", "stage": stage, "fraction": fraction})


def emit(event: dict) -> None:
    sys.stderr.write(json.dumps(event) + "\n")
    sys.stderr.flush()


@contextmanager
def progress_reporter(mode: str, description: str) -> Iterator:
    """Yield a ``callback(stage, fraction)`` for ``mode`` ``bar`` | ``json`` | ``none``."""
    if mode == "json":
        yield Monotone(JsonProgress())
    elif mode == "none":
        yield lambda stage, fraction: None
    else:
        with BarProgress(description) as bar:
            yield Monotone(bar)
