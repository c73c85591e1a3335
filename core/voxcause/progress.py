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
from collections.abc import Callable, Iterator
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


class PassShare:
    """A search-then-extract engine's (stage, fraction) as the share of its forward passes done, so every stage
    weighs what it costs.

    The engine's own fractions place its stages, not their cost: the partition search reports the iterations done
    (up to ``search_end``), the extraction three stage marks above it, so the bar once sat at 96-98% while the
    binary searches of the extraction ran. Here each event becomes ``done / (done + expected)`` passes: during the
    search the passes still expected are those of the search's unfinished share at the rate so far (``done / f``
    for a search fraction ``f``) plus ``after_search``, the engine's estimate of what follows; after the search the
    search's passes are known and only ``after_search`` (or what was already spent, if more) remains. A fraction of
    1 ends it. The reported fraction never goes back (a search retried on another canvas starts at 0 again).
    """

    def __init__(self, callback: Callable[[str, float], None], passes: Callable[[], int], *, after_search: float,
                 search_end: float = 0.95) -> None:
        self.callback, self.passes = callback, passes
        self.after_search, self.search_end = max(1.0, after_search), search_end
        self.start = passes()
        self.searched: int | None = None  # passes the search took, once it ended
        self.shown = 0.0

    def share(self, fraction: float) -> float | None:
        """The share of passes done at an engine ``fraction``; None while the search has not said enough."""
        done = self.passes() - self.start
        if fraction >= 1.0:
            return 1.0
        if fraction > self.search_end:
            if self.searched is None:
                self.searched = done
            return done / (self.searched + max(self.after_search, 1.05 * (done - self.searched)))
        searched = fraction / self.search_end
        if searched < MIN_SEARCH_SHARE:
            return None
        return done / (done / searched + self.after_search)

    def __call__(self, stage: str, fraction: float) -> None:
        share = self.share(fraction)
        self.shown = max(self.shown, min(1.0, share if share is not None else 0.0))
        self.callback(stage, self.shown)


#: Below this share of its iterations the search's pass rate says too little to extrapolate from.
MIN_SEARCH_SHARE = 0.02


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
