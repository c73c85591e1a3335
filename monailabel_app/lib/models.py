"""Models loaded once per server and shared by the tasks that use them.

The app's endpoint runs each ``/infer`` request in a thread of its own (lib/serving.py), so several requests
can reach the same model at once. Gradient methods attach hooks to the network and the causal engine counts
forward passes on the `LoadedModel`, so a model is used by one request at a time: `ModelPool.use` hands out
the model when it is the request's turn. Turns are taken in arrival order, a request waiting for its turn is
listed as such in ``GET /queue/``, and a cancelled one leaves the line. Requests for different models run
in parallel.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from .jobs import current_job

#: How often a request waiting for a model looks whether it was cancelled (seconds).
CANCEL_POLL_SECONDS = 0.25


class Turns:
    """A re-entrant lock that grants turns in arrival order and lets a cancelled request leave the line.

    Re-entrant because one request may hold the same model twice (the counterfactual's segmenter region and
    its explained model can be the same network).
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._line: deque[int] = deque()
        self._owner: int | None = None
        self._depth = 0

    @contextmanager
    def turn(self, name: str) -> Iterator[None]:
        """Hold the lock for the block; waits in line, stopping if the current job is cancelled."""
        me = threading.get_ident()
        job = current_job()
        with self._changed:
            if self._owner == me:
                self._depth += 1
            else:
                self._line.append(me)
                try:
                    while self._owner is not None or self._line[0] != me:
                        if job is not None:
                            job.waiting_for(name)
                            job.check()
                        self._changed.wait(CANCEL_POLL_SECONDS)
                except BaseException:
                    self._line.remove(me)
                    self._changed.notify_all()
                    raise
                self._line.popleft()
                self._owner, self._depth = me, 1
        if job is not None:
            job.running(name)
        try:
            yield
        finally:
            with self._changed:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    self._changed.notify_all()


class ModelPool:
    """Lazily loaded `voxcause.LoadedModel`s keyed by (path, device), each used in turns."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._models: dict[tuple[str, str], Any] = {}
        self._turns: dict[tuple[str, str], Turns] = {}

    def _turns_for(self, key: tuple[str, str]) -> Turns:
        with self._guard:
            return self._turns.setdefault(key, Turns())

    @contextmanager
    def use(self, path: Path | None, *, role: str, device: str = "cpu") -> Iterator[Any]:
        """Yield the loaded model at ``path`` for exclusive use by one request, when it is its turn.

        Raises:
            HTTPException 503 when no model is configured for ``role`` (the server is up but cannot serve it).
            RequestCancelled when the current request is cancelled while it waits.
        """
        if path is None:
            raise HTTPException(
                status_code=503,
                detail=f"no {role} model is configured — start the server with --conf {role} PATH "
                f"or install voxcause with its sample models",
            )
        key = (str(path), device)
        with self._turns_for(key).turn(role):
            model = self._models.get(key)
            if model is None:
                import voxcause

                model = voxcause.load_model(str(path), device=device)
                self._models[key] = model
            yield model

    def clear(self) -> None:
        with self._guard:
            self._models.clear()


#: One pool per server process: every task of the app shares it.
POOL = ModelPool()
