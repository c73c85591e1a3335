"""The Apply/Cancel state machine of one run.

One button is Apply while idle, Cancel while a run is under way, and a disabled "Cancelling…" until the killed
process has gone. Keeping this here (not in the widget) lets a test walk every transition, and lets the Logic
report changes as `StateChange` events to whatever callback the widget gave it, so the Logic never imports
the widget.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable


class RunState(enum.Enum):
    """Where the one run of the panel is."""

    IDLE = "idle"
    RUNNING = "running"
    CANCELLING = "cancelling"


class ExitCode(enum.IntEnum):
    """Exit codes of the `voxcause` command line (see docs/design.md#errors-and-exit-codes)."""

    OK = 0
    INTERNAL = 1
    BAD_INPUT = 2


class Outcome(enum.Enum):
    """How a run ended, as the panel reports it."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    BAD_INPUT = "bad input"
    CANCELLED = "cancelled"


@dataclasses.dataclass(frozen=True)
class ButtonSpec:
    """What the Apply/Cancel button shows in a state."""

    text: str
    enabled: bool
    tooltip: str


@dataclasses.dataclass(frozen=True)
class StateChange:
    """Sent to the listener on every transition; `outcome`/`message` are set when a run ends."""

    old: RunState
    new: RunState
    outcome: Outcome | None = None
    message: str = ""


_BUTTONS = {
    RunState.IDLE: ButtonSpec("Apply", True, "Run the explanation in a separate process."),
    RunState.RUNNING: ButtonSpec("Cancel", True, "Stop the run and every process it started."),
    RunState.CANCELLING: ButtonSpec("Cancelling…", False, "Waiting for the stopped process to exit."),
}


class InvalidTransition(RuntimeError):
    """A programming error: e.g. starting a second run while one is under way."""


class RunMachine:
    """Tracks one run: `start()`, then `cancel()` any number of times, then `finish(exit_code)`.

    Args:
        listener: called with a `StateChange` after every transition (the widget updates the button,
            progress bar and message from it).
    """

    def __init__(self, *, listener: Callable[[StateChange], None] | None = None) -> None:
        self.state = RunState.IDLE
        self.outcome: Outcome | None = None
        self.message = ""
        self._listener = listener

    @property
    def button(self) -> ButtonSpec:
        """The Apply/Cancel button for the current state."""
        return _BUTTONS[self.state]

    @property
    def busy(self) -> bool:
        """True while a process may still be alive."""
        return self.state is not RunState.IDLE

    def start(self) -> None:
        """IDLE -> RUNNING; a second start while busy is an error (the button is Cancel then)."""
        if self.state is not RunState.IDLE:
            raise InvalidTransition(f"cannot start a run while {self.state.value}")
        self.outcome, self.message = None, ""
        self._move(RunState.RUNNING)

    def reject(self, message: str) -> None:
        """Bad input found before a process started: stay IDLE and report it."""
        if self.state is not RunState.IDLE:
            raise InvalidTransition(f"cannot reject input while {self.state.value}")
        self.outcome, self.message = Outcome.BAD_INPUT, message
        self._move(RunState.IDLE, Outcome.BAD_INPUT, message)

    def cancel(self) -> bool:
        """RUNNING -> CANCELLING. Returns True when the caller must now kill the process (first cancel only)."""
        if self.state is not RunState.RUNNING:
            return False
        self._move(RunState.CANCELLING)
        return True

    def finish(self, exit_code: int | None, *, message: str = "") -> Outcome:
        """The process has exited: back to IDLE with the outcome.

        A cancelled run is CANCELLED whatever code the killed process returned; otherwise 0 is SUCCEEDED,
        2 BAD_INPUT and anything else (a crash, a signal) FAILED.
        """
        if self.state is RunState.IDLE:
            raise InvalidTransition("finish() without a running process")
        if self.state is RunState.CANCELLING:
            outcome, message = Outcome.CANCELLED, message or "Cancelled: the run was stopped and nothing was added."
        elif exit_code == ExitCode.OK:
            outcome = Outcome.SUCCEEDED
        elif exit_code == ExitCode.BAD_INPUT:
            outcome = Outcome.BAD_INPUT
        else:
            outcome = Outcome.FAILED
            message = message or f"The run failed (exit code {exit_code}); see the log below."
        self.outcome, self.message = outcome, message
        self._move(RunState.IDLE, outcome, message)
        return outcome

    def _move(self, new: RunState, outcome: Outcome | None = None, message: str = "") -> None:
        old, self.state = self.state, new
        if self._listener is not None:
            self._listener(StateChange(old, new, outcome, message))
