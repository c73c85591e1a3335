"""Running one case where a worker picked it up: stage, compute, mark done, publish by rename.

The case's outputs are written into a staging folder ``OUT/.voxcause-staging/<id>.<pid>.<random>`` and renamed
onto ``OUT/<id>`` only after the work and ``done.json`` are complete. A worker killed at any moment therefore
leaves either the previous complete folder or nothing — never a half-written case — and ``done.json`` inside
``OUT/<id>`` always means "finished with this hash".

Exceptions are caught and turned into a ``failed`` result (with the traceback kept in
``OUT/<id>.error.txt``), so one bad case never takes the batch down.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from ..errors import InputError
from .commands import case_function
from .job import Job
from .manifest import Case
from .results import CaseResult

STAGING = ".voxcause-staging"
DONE = "done.json"


def one_line(error: BaseException) -> str:
    """A single line for the results table: InputError messages as they are, others with their type."""
    text = " ".join(str(error).split()) or error.__class__.__name__
    if not isinstance(error, InputError):
        text = f"{error.__class__.__name__}: {text}"
    return text if len(text) <= 300 else text[:297] + "..."


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def cores() -> int:
    """CPU cores this process may run on (the affinity mask, which containers and ``taskset`` narrow)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _publish(staging: Path, final: Path) -> None:
    """Rename ``staging`` onto ``final``, moving a previous (stale) folder out of the way first.

    Only a folder a batch published (it holds ``done.json``) is replaced; anything else of the case's name was
    made by someone else and refuses the case (InputError), untouched.
    """
    if (final.exists() or final.is_symlink()) and (final.is_symlink() or read_done(final) is None):
        raise InputError(
            f"cannot write case {final.name}: {final} is already there and no batch wrote it — move it away or "
            "choose another --out (voxcause never replaces what it did not make)"
        )
    for _ in range(3):
        old = None
        if final.exists():
            old = staging.with_name(staging.name + ".old")
            os.replace(final, old)
        try:
            os.replace(staging, final)
        except OSError:
            # Another worker published the same case between our two renames: try again.
            if old is not None and not final.exists():
                os.replace(old, final)
            continue
        finally:
            if old is not None and old.exists():
                shutil.rmtree(old, ignore_errors=True)
        return
    raise OSError(f"could not move {staging} onto {final}")


def read_done(case_dir: Path) -> dict[str, Any] | None:
    """The ``done.json`` of a case folder, or None if absent or unreadable."""
    try:
        return json.loads((case_dir / DONE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_case(case: Case, job: Job, out: str, digest: str) -> CaseResult:
    """Compute ``case`` into ``OUT/<case.id>`` and return its result; a case's own failure is returned."""
    start = time.perf_counter()
    root = Path(out)
    final = root / case.id
    error_file = root / f"{case.id}.error.txt"
    staging = root / STAGING / f"{case.id}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    base = {
        "id": case.id, "label": case.label, "patient": case.patient, "hash": digest, "worker": worker_name(),
    }
    try:
        staging.mkdir(parents=True)
        if job.threads:
            from ..models.loaded import set_threads  # torch: loaded only in the worker that runs a case

            set_threads(job.threads)
        fields = case_function(job.command)(case, job, staging)
        seconds = time.perf_counter() - start
        done = {
            "hash": digest,
            "id": case.id,
            "command": job.command,
            "score": fields.get("score"),
            "forward_passes": fields.get("forward_passes"),
            "target": fields.get("target"),
            "certificate": fields.get("certificate"),
            "seconds": seconds,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "worker": base["worker"],
            "inputs": {"image": list(case.image), "model": case.model, "mask": case.mask},
            "settings": job.settings(case),
        }
        (staging / DONE).write_text(json.dumps(done, indent=2, default=str), encoding="utf-8")
        _publish(staging, final)
        error_file.unlink(missing_ok=True)
        return CaseResult(
            **base, status="done", score=_number(done["score"]),
            forward_passes=_integer(done["forward_passes"]), seconds=seconds, out=str(final),
            target=done["target"], certificate=done["certificate"],
        )
    except Exception as error:  # one failing case is recorded; the batch goes on
        with contextlib.suppress(OSError):
            error_file.write_text(traceback.format_exc(), encoding="utf-8")
        return CaseResult(**base, status="failed", seconds=time.perf_counter() - start, error=one_line(error))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def skipped_result(case: Case, done: dict[str, Any], case_dir: Path) -> CaseResult:
    """The result of a case already finished with the same hash (numbers read back from its ``done.json``)."""
    return CaseResult(
        id=case.id, status="skipped", score=_number(done.get("score")),
        forward_passes=_integer(done.get("forward_passes")), seconds=_number(done.get("seconds")),
        out=str(case_dir), target=done.get("target"), certificate=done.get("certificate"), label=case.label,
        patient=case.patient,
        hash=str(done.get("hash", "")), worker=str(done.get("worker", "")),
    )


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _integer(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
