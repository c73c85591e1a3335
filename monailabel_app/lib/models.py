"""Models loaded once per server and shared by the tasks that use them.

MONAI Label runs each ``/infer`` request in a worker thread, so several requests can reach the same model
at once. Gradient methods attach hooks to the network and the causal engine counts forward passes on the
`LoadedModel`, so a model is used by one request at a time: `ModelPool.use` hands out the model under its
lock. Requests for different models still run in parallel.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import HTTPException


class ModelPool:
    """Lazily loaded `voxcause.LoadedModel`s keyed by (path, device), each with its own lock."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._models: dict[tuple[str, str], Any] = {}
        self._locks: dict[tuple[str, str], threading.RLock] = {}

    def _lock_for(self, key: tuple[str, str]) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(key, threading.RLock())

    @contextmanager
    def use(self, path: Path | None, *, role: str, device: str = "cpu") -> Iterator[Any]:
        """Yield the loaded model at ``path`` for exclusive use by one request.

        Raises:
            HTTPException 503 when no model is configured for ``role`` (the server is up but cannot serve it).
        """
        if path is None:
            raise HTTPException(
                status_code=503,
                detail=f"no {role} model is configured — start the server with --conf {role} PATH "
                f"or install voxcause with its sample models",
            )
        key = (str(path), device)
        lock = self._lock_for(key)
        with lock:
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
