"""A batch from start to end: plan (hash, skip finished cases), run locally or on Dask, write the table.

    cases = read_manifest("cohort.csv", model="model.ts")
    report = run_batch(cases, Job(method="rex", seed=0), out="results/", workers=2)
    report.table  # results.csv / results.md in results/

Planning happens in this process: every case's content hash is computed from its input bytes and settings,
and a case whose ``OUT/<id>/done.json`` holds that hash is *skipped* (never sent to a worker). The rest run
on local processes (default), in this process (``workers=0``), or on a Dask cluster (``scheduler=``).
After every finished case the results table is rewritten atomically, so an interrupted batch leaves a
correct table of what it had done and the rerun continues where it stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from .commands import unavailable
from .execute import STAGING, cores, read_done, skipped_result
from .hashing import case_hash
from .job import Job
from .manifest import Case
from .results import BatchState, CaseResult, write_results

Progress = Callable[[CaseResult, int, int], None]
LOCK = ".voxcause-batch.lock"


@dataclass
class BatchReport:
    """Outcome of a batch, in manifest order.

    Attributes:
        results: one `CaseResult` per case.
        out: the output folder.
        table: paths of ``results.csv`` and ``results.md``.
        worker_deaths: local worker processes that died (their cases were rerun).
    """

    results: list[CaseResult]
    out: Path
    table: tuple[Path, Path]
    worker_deaths: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def executed(self) -> int:
        """Cases computed in this run (done or failed), i.e. not skipped."""
        return sum(result.status != "skipped" for result in self.results)

    @property
    def failed(self) -> list[CaseResult]:
        return [result for result in self.results if result.status == "failed"]


def default_workers(todo: int, device: str = "cpu") -> int:
    """One local process per CPU core, never more than the cases to run; one for a CUDA device."""
    if device.startswith("cuda"):
        return 1
    return max(1, min(todo, cores()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def exclusive(root: Path):
    """Hold ``OUT/.voxcause-batch.lock`` while a batch writes ``OUT``; a stale lock (dead pid here) is taken over.

    Two batches writing one folder would sweep each other's staging folders and results table.
    """
    lock = root / LOCK
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            owner = lock.read_text(encoding="utf-8", errors="replace").split()
            host, pid = (owner + ["", "0"])[:2]
            if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
                lock.unlink(missing_ok=True)
                continue
            raise InputError(
                f"another voxcause batch (pid {pid} on {host or 'unknown host'}) is writing to {root} — wait for "
                f"it, use another --out, or delete {lock} if that batch is gone"
            ) from None
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(me)
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def plan(
    cases: Sequence[Case], job: Job, out: Path, *, force: bool = False
) -> tuple[list[tuple[Case, str]], dict[str, CaseResult]]:
    """Split cases into (to run, with their hash) and (already done with the same hash -> skipped result).

    A case whose inputs cannot be read for hashing is not an error of the batch: it is run anyway and
    fails there with the real reason.
    """
    todo: list[tuple[Case, str]] = []
    skipped: dict[str, CaseResult] = {}
    for case in cases:
        try:
            settings = job.settings(case)
            digest = case_hash(image=case.image, model=case.model, mask=case.mask, settings=settings)
        except OSError as error:
            todo.append((case, f"unhashable:{error.__class__.__name__}"))
            continue
        done = None if force else read_done(out / case.id)
        if done is not None and done.get("hash") == digest:
            skipped[case.id] = skipped_result(case, done, out / case.id)
        else:
            todo.append((case, digest))
    return todo, skipped


def run_batch(
    cases: Sequence[Case],
    job: Job,
    *,
    out: str | os.PathLike,
    workers: int | None = None,
    scheduler: Any = None,
    force: bool = False,
    progress: Progress | None = None,
) -> BatchReport:
    """Run ``job`` over ``cases`` into ``out`` and return the report (results also in ``out/results.*``).

    Args:
        cases: from `read_manifest`.
        job: the command and settings.
        out: output folder; each case writes ``out/<id>/`` (with ``done.json`` when finished).
        workers: local processes (default: one per CPU core, at most the number of cases; one for CUDA); 0
            runs the cases in this process. Ignored with ``scheduler``.
        scheduler: a Dask scheduler address (``tcp://host:8786``) or a `distributed.Client`; None: local.
        force: recompute finished cases too.
        progress: called as ``progress(result, finished, total)`` after every case (skipped ones first).

    Raises:
        InputError: the command is unavailable, ``workers`` is negative, the scheduler cannot be reached, or
            another batch is writing to ``out``.
    """
    problem = unavailable(job.command)
    if problem:
        raise InputError(problem)
    if workers is not None and workers < 0:
        raise InputError(f"--workers {workers} is negative — pass 0 (this process) or a positive number")
    root = Path(out).resolve()
    root.mkdir(parents=True, exist_ok=True)
    with exclusive(root):
        return _run(cases, job, root, workers=workers, scheduler=scheduler, force=force, progress=progress)


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a stop) during a batch: ``finished`` of ``total`` cases are in the table, the rest were left."""

    def __init__(self, finished: int, total: int) -> None:
        super().__init__(f"{finished} of {total} cases finished")
        self.finished, self.total = finished, total


def _run(cases: Sequence[Case], job: Job, root: Path, *, workers: int | None, scheduler: Any, force: bool,
         progress: Progress | None) -> BatchReport:
    shutil.rmtree(root / STAGING, ignore_errors=True)  # a killed run's half-written cases (we hold the lock)
    todo, skipped = plan(cases, job, root, force=force)
    results: dict[str, CaseResult] = dict(skipped)
    order = [case.id for case in cases]
    total = len(cases)
    state = BatchState(total=total)
    write_results(root, _ordered(results, order), state)

    def record(result: CaseResult) -> None:
        results[result.id] = result
        write_results(root, _ordered(results, order), state)
        if progress:
            progress(result, len(results), total)

    def died() -> None:
        state.worker_deaths += 1
        write_results(root, _ordered(results, order), state)

    try:
        if progress:
            for count, result in enumerate(_ordered(skipped, order), start=1):
                progress(result, count, total)
        if todo:
            _execute(todo, job, root, record, died, workers=workers, scheduler=scheduler)
    except KeyboardInterrupt:
        state.interrupted = True
        write_results(root, _ordered(results, order), state)
        raise BatchInterrupted(len(results), total) from None
    shutil.rmtree(root / STAGING, ignore_errors=True)
    final = _ordered(results, order)
    table = write_results(root, final, state)
    counts = {status: sum(r.status == status for r in final) for status in ("done", "skipped", "failed")}
    return BatchReport(results=final, out=root, table=table, worker_deaths=state.worker_deaths, counts=counts)


def _execute(todo: list[tuple[Case, str]], job: Job, root: Path, record: Callable[[CaseResult], None],
             died: Callable[[], None], *, workers: int | None, scheduler: Any) -> None:
    """Run the cases to do on Dask, in this process, or on local worker processes."""
    if scheduler is not None:
        from .distributed import run_dask

        run_dask(todo, job, str(root), record, scheduler=scheduler)
        return
    count = default_workers(len(todo), job.device) if workers is None else workers
    if job.threads is None and count > 0:
        job = replace(job, threads=max(1, cores() // count))
    if count == 0:
        from .local import run_inline

        run_inline(todo, job, str(root), record)
    else:
        from .local import run_processes

        run_processes(todo, job, str(root), record, workers=count, on_death=died)


def _ordered(results: dict[str, CaseResult], order: Sequence[str]) -> list[CaseResult]:
    return [results[case_id] for case_id in order if case_id in results]
