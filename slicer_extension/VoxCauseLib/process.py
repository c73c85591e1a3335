"""Run the `voxcause` command in a separate process without ever blocking the caller.

Why: an explanation takes seconds to minutes; run inside Slicer's own Python it would freeze the GUI and could
not be stopped. Here the command runs as a child process in its own process group; a reader thread turns
each output line into a `progress` event and puts it in a queue; the GUI drains the queue from a Qt timer
(`poll()`), so it never waits on the child. `cancel()` kills the whole process tree (the child and anything it
started, e.g. data-loader workers), first politely, then for good.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence

from .options import Device
from .progress import Event, parse_line


class ProcessEventKind(enum.Enum):
    """What a `ProcessEvent` reports."""

    OUTPUT = "output"
    EXITED = "exited"


@dataclasses.dataclass(frozen=True)
class ProcessEvent:
    """One thing that happened to the child: a parsed output line, or its exit with the return code."""

    kind: ProcessEventKind
    event: Event | None = None
    returncode: int | None = None


def child_environment(device: Device, *, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the child: unbuffered UTF-8 output, and no visible GPU when the user chose CPU.

    `CUDA_VISIBLE_DEVICES=""` makes CPU mode hold even if some library would pick a GPU by itself, which is
    the "I chose CPU but it used (or crashed on) the GPU" confusion users of other extensions report.
    """
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    if device is Device.CPU:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


class ProcessRunner:
    """One child process with its output streamed into a queue.

    Args:
        command: the argument list (e.g. from `command.build_command`).
        env: environment for the child (default: `child_environment(Device.CPU)`).
        cwd: working folder for the child.

    Example:
        >>> runner = ProcessRunner([sys.executable, "-c", "print('hello')"])
        >>> runner.start()
        >>> [e.event.text for e in runner.wait(timeout=30) if e.event is not None]
        ['hello']
    """

    def __init__(self, command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None) -> None:
        self.command = [str(c) for c in command]
        self.env = dict(env) if env is not None else child_environment(Device.CPU)
        self.cwd = cwd
        self.returncode: int | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._queue: queue.Queue[ProcessEvent] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._exited_reported = False

    @property
    def pid(self) -> int | None:
        """Process id of the child (None before `start()`)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True until the child's exit has been handed out by `poll()`/`wait()`."""
        return self._proc is not None and not self._exited_reported

    def start(self) -> None:
        """Start the child in its own process group; stderr is merged into stdout (progress comes on stderr)."""
        if self._proc is not None:
            raise RuntimeError("this runner has already started a process")
        kwargs: dict[str, object] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        else:
            kwargs["start_new_session"] = True
        self._proc = subprocess.Popen(  # noqa: S603 - the command is built from validated choices
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            env=self.env,
            cwd=self.cwd,
            **kwargs,  # type: ignore[arg-type]
        )
        self._thread = threading.Thread(target=self._read, name="voxcause-output", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            event = parse_line(line)
            if event is not None:
                self._queue.put(ProcessEvent(ProcessEventKind.OUTPUT, event=event))
        proc.stdout.close()
        returncode = proc.wait()
        self._queue.put(ProcessEvent(ProcessEventKind.EXITED, returncode=returncode))

    def poll(self) -> list[ProcessEvent]:
        """Everything that has happened since the last call; never blocks."""
        events: list[ProcessEvent] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            events.append(self._note(item))
        return events

    def wait(self, timeout: float | None = None) -> list[ProcessEvent]:
        """Block until the child has exited (for scripts and tests); returns all events not yet polled.

        Raises:
            TimeoutError: the child is still running after `timeout` seconds (it is left running).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        events: list[ProcessEvent] = []
        while self.running:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if remaining == 0.0:
                raise TimeoutError(f"process {self.pid} still running after {timeout} s")
            try:
                item = self._queue.get(timeout=min(remaining, 0.1) if remaining is not None else 0.1)
            except queue.Empty:
                continue
            events.append(self._note(item))
        return events

    def _note(self, item: ProcessEvent) -> ProcessEvent:
        if item.kind is ProcessEventKind.EXITED:
            self.returncode = item.returncode
            self._exited_reported = True
            if self._thread is not None:
                self._thread.join(timeout=1)
        return item

    def cancel(self, *, grace: float = 2.0) -> None:
        """Kill the child and every process it started; returns once they are gone (or after `grace` + 5 s).

        On POSIX the whole process group gets SIGTERM, then SIGKILL after `grace` seconds; processes that left
        the group are found through psutil when it is installed. On Windows `taskkill /T /F` ends the tree.
        The EXITED event still arrives through `poll()`.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None and not _group_alive(proc.pid):
            return
        descendants = _descendants(proc.pid)
        if sys.platform == "win32":
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True, check=False)
        else:
            _signal_group(proc.pid, signal.SIGTERM)
            _kill_all(descendants, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and (_group_alive(proc.pid) or _any_alive(descendants)):
                time.sleep(0.05)
            _signal_group(proc.pid, signal.SIGKILL)
            _kill_all(descendants, signal.SIGKILL)
        try:
            proc.wait(timeout=grace + 5)
        except subprocess.TimeoutExpired:
            proc.kill()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    if sys.platform == "win32":
        return False
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _descendants(pid: int) -> list[int]:
    """Child process ids of `pid`, recursively, when psutil is available (Slicer bundles it)."""
    try:
        import psutil
    except ImportError:
        return []
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def _kill_all(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _any_alive(pids: Sequence[int]) -> bool:
    alive = False
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive = True
        except (ProcessLookupError, PermissionError):
            pass
    return alive
