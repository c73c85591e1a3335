"""The requests the server is working on: each one's state, its own files, and how to stop it.

MONAI Label 0.8.5 computes an ``/infer`` request on its event loop, so one explanation held every other
request (``/info/`` included) until it ended. The app's endpoint (lib/serving.py) runs each request in a
thread of its own instead and registers it here as a `Job`:

- **its own files**: the image and label the request uploaded (stored by the app, in a private folder per
  request) or its session's image. The upload guard (lib/guard.py) accepts exactly these paths, so a request
  cannot name another request's upload, whatever the file is called;
- **its state**, for ``GET /queue/``: waiting for a model (models are used one request at a time, in arrival
  order: lib/models.py), running (with the core's progress), cancelling;
- **cancellation**: when the client disconnects, the endpoint cancels the job; the job stops at its next
  check — while it waits for a model, and at every progress report of the core (`report_progress`, passed to
  ``voxcause.explain`` as its ``progress`` callback), by raising `RequestCancelled` in its own thread.

The job of the running thread is found through a context variable, so the tasks and the guard need no
extra arguments and work unchanged (with no job) in MONAI Label's batch inference and command line.
"""

from __future__ import annotations

import contextvars
import itertools
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class RequestCancelled(BaseException):  # noqa: N818 - like KeyboardInterrupt: stops work, is no error
    """Raised in a job's thread when its request was cancelled. A BaseException, so that no ``except
    Exception`` on the way (the core, MONAI Label) mistakes it for a failure and carries on."""


_IDS = itertools.count(1)


@dataclass
class Job:
    """One ``/infer`` request in the server."""

    task: str
    user: str
    #: private folder of the request's uploads (removed with the job), or None when it uploaded nothing
    folder: Path | None = None
    #: the image file uploaded with this request (stored by the app in ``folder``), if any
    upload_path: str | None = None
    #: the image of the session the request named (``?session_id=``), as MONAI Label's sessions store it
    session_image: str | None = None
    #: the label file uploaded with this request, if any
    label_path: str | None = None
    id: int = field(default_factory=lambda: next(_IDS))
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    state: str = "queued"
    #: the model (role) the request waits for or uses
    model: str = ""
    stage: str = ""
    fraction: float = 0.0
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    cancel_reason: str = ""

    # ---- files -------------------------------------------------------------------------------------
    def remove_files(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    # ---- cancellation -----------------------------------------------------------------------------
    def cancel(self, reason: str) -> None:
        if not self._cancelled.is_set():
            self.cancel_reason = reason
            self.state = "cancelling"
            self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise `RequestCancelled` if the request was cancelled (called at the job's stopping points)."""
        if self._cancelled.is_set():
            raise RequestCancelled(self.cancel_reason)

    # ---- state -------------------------------------------------------------------------------------
    def waiting_for(self, model: str) -> None:
        if not self.cancelled:
            self.state, self.model = f"waiting for the {model}", model

    def running(self, model: str) -> None:
        if not self.cancelled:
            self.state, self.model = "running", model
            self.started = self.started or time.monotonic()

    def as_json(self, now: float) -> dict[str, Any]:
        """The job's line in ``GET /queue/`` (no image ids or paths: the queue is visible to every user)."""
        return {
            "id": self.id,
            "task": self.task,
            "user": self.user,
            "state": self.state,
            "model": self.model,
            "stage": self.stage,
            "progress": round(self.fraction, 3),
            "waited_s": round((self.started or now) - self.created, 1),
            "running_s": round(now - self.started, 1) if self.started else 0.0,
        }


class JobRegistry:
    """The jobs the server is working on, in arrival order."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._jobs: dict[int, Job] = {}

    def add(self, job: Job) -> None:
        with self._guard:
            self._jobs[job.id] = job

    def remove(self, job: Job) -> None:
        with self._guard:
            self._jobs.pop(job.id, None)

    def __len__(self) -> int:
        with self._guard:
            return len(self._jobs)

    def snapshot(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._guard:
            jobs = list(self._jobs.values())
        return [job.as_json(now) for job in jobs]


#: One registry per server process.
JOBS = JobRegistry()

_CURRENT: contextvars.ContextVar[Job | None] = contextvars.ContextVar("voxcause_job", default=None)


def current_job() -> Job | None:
    """The job whose thread is running (None outside the app's /infer endpoint: batch, command line)."""
    return _CURRENT.get()


@contextmanager
def running_as(job: Job) -> Iterator[Job]:
    """Make ``job`` the current job of this thread for the duration of the block."""
    token = _CURRENT.set(job)
    try:
        yield job
    finally:
        _CURRENT.reset(token)


def report_progress(stage: str, fraction: float) -> None:
    """The core's ``progress`` callback: records the stage on the current job and stops a cancelled one."""
    job = current_job()
    if job is None:
        return
    job.check()
    job.stage = stage
    job.fraction = fraction
