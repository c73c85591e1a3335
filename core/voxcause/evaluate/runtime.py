"""Wall time and peak memory of one explanation.

On CUDA the peak is ``torch.cuda.max_memory_allocated`` during the call. On the CPU torch's allocations are
not visible to ``tracemalloc``, so a background thread samples the process's resident memory every 5 ms and
the peak *above the starting level* is reported (a lower bound for very short calls).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import torch


def _rss() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:  # pragma: no cover
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def measure(call: Callable[[], Any], *, device: str | torch.device = "cpu") -> tuple[Any, dict]:
    """Run ``call()``; return (its result, {"seconds", "peak_mb"})."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        start = time.perf_counter()
        result = call()
        torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(device) - base
        return result, {"seconds": seconds, "peak_mb": peak / 2**20}
    base = _rss()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            stop.wait(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    try:
        result = call()
    finally:
        seconds = time.perf_counter() - start
        stop.set()
        thread.join()
    peak[0] = max(peak[0], _rss())
    return result, {"seconds": seconds, "peak_mb": (peak[0] - base) / 2**20}
