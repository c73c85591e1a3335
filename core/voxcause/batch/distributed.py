"""Running cases on a Dask distributed cluster (``--scheduler ADDRESS``).

Each case is one Dask task calling the same `run_case` as local workers, so results are identical
wherever a case runs. The task key is derived from the case id and its content hash, so a case
submitted twice (two clients, a retried batch) is computed once while its result is held.

Dask reschedules the tasks of a worker that dies onto the remaining workers (up to the scheduler's
``allowed-failures``, then the case is recorded as failed); staging folders and rename-on-finish make the
rerun safe. With a CUDA device each task asks for one ``GPU`` resource, so start GPU workers with
``dask worker ADDRESS --resources GPU=1`` (one per GPU).

Workers must see the same paths as this machine (a shared file system) for the inputs and ``--out``.

Unless ``--threads`` says otherwise, each case sets torch's CPU threads to the worker host's cores divided by
the Dask threads on that host (all its workers together), so several workers on one machine share its cores
instead of each starting a thread per core, and a lone worker gets every core (Dask's nanny would pin it to
one thread).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import InputError
from .execute import cores, one_line, run_case, worker_name
from .job import Job
from .manifest import Case
from .results import CaseResult

Task = tuple[Case, str]
CONNECT_TIMEOUT = "10s"


def _client(scheduler: Any) -> tuple[Any, bool]:
    """A connected client and whether we own it (so we close only what we opened)."""
    try:
        from distributed import Client
    except ImportError:
        raise InputError(
            "--scheduler needs dask.distributed — install it with: pip install 'voxcause[distributed]'"
        ) from None
    if isinstance(scheduler, Client):
        return scheduler, False
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False), True
    except (OSError, TimeoutError, ValueError) as error:
        raise InputError(
            f"cannot reach the Dask scheduler at {scheduler} ({one_line(error)}) — start one with "
            "`dask scheduler` (and workers with `dask worker ADDRESS`) or fix --scheduler"
        ) from None


def resources_for(job: Job) -> dict[str, float] | None:
    """Dask resources each case asks for: one GPU for CUDA jobs, none otherwise."""
    return {"GPU": 1} if job.device.startswith("cuda") else None


def _check_gpu_workers(client: Any) -> None:
    workers = client.scheduler_info().get("workers", {})
    if not any(info.get("resources", {}).get("GPU", 0) >= 1 for info in workers.values()):
        raise InputError(
            "--device cuda on Dask needs workers that offer a GPU resource — start them with "
            "`dask worker ADDRESS --resources GPU=1` or use --device cpu"
        )


def _host(address: str) -> str:
    """``tcp://10.0.0.5:40123`` -> ``10.0.0.5`` (workers on one host share its cores)."""
    return address.split("://", 1)[-1].rsplit(":", 1)[0]


def host_threads(client: Any) -> dict[str, int]:
    """Dask threads per host, i.e. how many cases may run at once on each machine of the cluster."""
    totals: dict[str, int] = {}
    for address, info in client.scheduler_info(n_workers=-1).get("workers", {}).items():
        totals[_host(address)] = totals.get(_host(address), 0) + int(info.get("nthreads", 1))
    return totals


def worker_threads(shares: Mapping[str, int]) -> int:
    """Torch threads for one case on the current Dask worker: its host's cores / cases running there at once.

    A worker that joined after the batch was submitted is not in ``shares``; it counts its own threads.
    """
    from distributed import get_worker

    worker = get_worker()
    concurrent = shares.get(_host(worker.address)) or worker.state.nthreads
    return max(1, cores() // max(1, concurrent))


def run_case_on_worker(case: Case, job: Job, out: str, digest: str, shares: Mapping[str, int]) -> CaseResult:
    """`run_case` with the worker's share of CPU threads (unless the job fixes ``threads``)."""
    if job.threads is None:
        job = replace(job, threads=worker_threads(shares))
    return run_case(case, job, out, digest)


def task_key(job: Job, case: Case, digest: str) -> str:
    return f"voxcause-{job.command.replace(':', '.')}-{case.id}-{digest[:16]}"


def run_dask(
    tasks: Sequence[Task],
    job: Job,
    out: str,
    on_result: Callable[[CaseResult], None],
    *,
    scheduler: Any,
) -> None:
    """Submit every case to the cluster at ``scheduler`` (an address or a `distributed.Client`)."""
    from distributed import as_completed

    client, owned = _client(scheduler)
    futures: dict[Any, Task] = {}
    try:
        resources = resources_for(job)
        if resources:
            _check_gpu_workers(client)
        shares = host_threads(client)
        for case, digest in tasks:
            key = task_key(job, case, digest)
            future = client.submit(
                run_case_on_worker, case, job, out, digest, shares, key=key, resources=resources, pure=False
            )
            futures[future] = (case, digest)
        for future in as_completed(futures, loop=client.loop):
            case, digest = futures[future]
            try:
                result = future.result()
            except Exception as error:  # KilledWorker after too many worker deaths, or a lost scheduler
                result = CaseResult(
                    id=case.id, status="failed", label=case.label, patient=case.patient, hash=digest,
                    worker=worker_name(),
                    error=f"on Dask: {one_line(error)} — run the batch again to retry it",
                )
            on_result(result)
            future.release()
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        if owned:
            client.close()
