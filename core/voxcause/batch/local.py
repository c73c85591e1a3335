"""Running cases on this machine in worker processes (the default).

Processes, not threads: each case holds its own model and volume, and Python-level work (ranking, masks)
does not share a GIL. Workers are started with ``spawn`` so a parent that already imported torch (with
its thread pools) is never forked.

At most ``workers`` cases are in flight, so when a worker process dies (killed, out of memory) and breaks
the pool, only the cases in flight are suspects. Suspects are rerun on a fresh pool, each one alone; a
case whose worker dies while it runs alone twice is recorded as failed, and every other case completes.
Each death is counted in the results table. Workers die with the batch process (`die_with_parent`), so a
``kill -9`` of the batch leaves no orphan holding memory.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from .execute import run_case, worker_name
from .job import Job
from .manifest import Case
from .results import CaseResult

Task = tuple[Case, str]
MAX_SOLO_DEATHS = 2
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def run_inline(tasks: Sequence[Task], job: Job, out: str, on_result: Callable[[CaseResult], None]) -> None:
    """Run the cases one after another in this process (``--workers 0``: simplest to debug)."""
    for case, digest in tasks:
        on_result(run_case(case, job, out, digest))


def run_processes(
    tasks: Sequence[Task],
    job: Job,
    out: str,
    on_result: Callable[[CaseResult], None],
    *,
    workers: int,
    on_death: Callable[[], None] | None = None,
) -> int:
    """Run the cases on ``workers`` local processes; returns how many times a worker process died (and calls
    ``on_death`` each time, so the results table can say so while the batch runs)."""
    queue: deque[Task] = deque(tasks)
    suspects: set[str] = set()
    solo_deaths: dict[str, int] = {}
    breaks = 0
    context = multiprocessing.get_context("spawn")
    while queue:
        pool = ProcessPoolExecutor(max_workers=max(1, min(workers, len(queue))), mp_context=context,
                                   initializer=die_with_parent, initargs=(os.getpid(),))
        inflight: dict[Future, Task] = {}
        lost: list[Task] = []
        broken = False
        try:
            while (queue or inflight) and not lost and not broken:
                while queue and len(inflight) < workers:
                    alone = queue[0][0].id in suspects
                    if alone and inflight:
                        break
                    case, digest = queue.popleft()
                    try:
                        future = pool.submit(run_case, case, job, out, digest)
                    except BrokenProcessPool:  # a worker died since the last wait: this pool takes no more work
                        queue.appendleft((case, digest))
                        broken = True
                        break
                    inflight[future] = (case, digest)
                    if alone:
                        break
                finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
                if broken or any(isinstance(f.exception(), BrokenProcessPool) for f in finished):
                    wait(inflight)  # the pool is broken: every in-flight future resolves now
                    finished = set(inflight)
                for future in finished:
                    task = inflight.pop(future)
                    if isinstance(future.exception(), BrokenProcessPool):
                        lost.append(task)
                    else:
                        on_result(future.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            _terminate(pool)
            raise
        pool.shutdown(wait=not (lost or broken))
        if lost:
            breaks += 1
            if on_death is not None:
                on_death()
            for case, digest in reversed(lost):
                if len(lost) == 1:
                    solo_deaths[case.id] = solo_deaths.get(case.id, 0) + 1
                if solo_deaths.get(case.id, 0) >= MAX_SOLO_DEATHS:
                    on_result(_died(case, digest, solo_deaths[case.id]))
                else:
                    suspects.add(case.id)
                    queue.appendleft((case, digest))
    return breaks


def die_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when the batch process ends, whatever ended it (``kill -9`` too).

    On Linux the kernel sends SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon
    thread checks the parent's pid every second. A parent already gone by now ends the worker at once.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), name="voxcause-parent-watch", daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop the pool's worker processes now (on Ctrl-C), without waiting for their cases."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()


def _died(case: Case, digest: str, deaths: int) -> CaseResult:
    return CaseResult(
        id=case.id, status="failed", label=case.label, patient=case.patient, hash=digest,
        worker=worker_name(),
        error=(
            f"the worker process died {deaths} times while running this case alone (killed or out of "
            "memory) — free memory (or lower --workers) and run the batch again"
        ),
    )
