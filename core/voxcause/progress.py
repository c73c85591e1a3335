"""Progress people can see: a monotone fraction, the time left, and a bar for interactive sessions.

Stages report their own fractions; a stage that starts lower than where the last one ended (``done 1.0`` then
``writing results 0.99``) must not move the bar back (`Monotone`). `voxcause.explain` shows a bar by itself in a
terminal or notebook (`interactive_progress`), so a Python user does not wait minutes in silence; pass
``progress=False`` (or set ``VOXCAUSE_PROGRESS=0``) to silence it. The command line's bar and JSON lines are
`voxcause.cli.progress`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Monotone:
    """Pass ``(stage, fraction)`` on with the fraction never below the highest seen, clipped to [0, 1]."""

    def __init__(self, callback) -> None:
        self.callback = callback
        self.highest = 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        self.highest = max(self.highest, min(1.0, max(0.0, float(fraction))))
        self.callback(stage, self.highest)


def time_left(elapsed: float, fraction: float) -> float | None:
    """Seconds left if the rest goes as fast as what is done; None before 5% (too early to say)."""
    return elapsed * (1 - fraction) / fraction if fraction >= 0.05 else None


class BarProgress:
    """A rich progress bar with the current stage; plain timestamped lines when stderr is not a terminal."""

    def __init__(self, description: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.interactive = self.console.is_terminal
        self.started = time.perf_counter()
        self._stage = None
        self.bar = (
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            if self.interactive
            else None
        )
        self.task = self.bar.add_task(description, total=1.0) if self.bar else None

    def __call__(self, stage: str, fraction: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=fraction, description=stage)
        elif stage != self._stage:
            self._stage = stage
            elapsed = time.perf_counter() - self.started
            left = time_left(elapsed, fraction)
            eta = f" ({fraction:.0%}, ~{left:.0f} s left)" if left is not None and fraction < 1 else ""
            self.console.print(f"[{elapsed:6.1f} s] {stage}{eta}", highlight=False)

    def __enter__(self) -> BarProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _interactive() -> bool:
    """A terminal on stderr, or a Jupyter/IPython kernel."""
    if os.environ.get("VOXCAUSE_PROGRESS", "1") == "0":
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) or "ipykernel" in sys.modules


@contextmanager
def interactive_progress(progress: Any, description: str) -> Iterator:
    """The callback to use: ``progress`` when it is one, None for ``False``, and for ``None`` a bar in an
    interactive session (stopped when the block ends, also on error), else None."""
    if progress is False or (progress is None and not _interactive()):
        yield None
    elif progress is not None:
        yield progress
    else:
        with BarProgress(description) as bar:
            yield Monotone(bar)
