"""Count and time every onnxruntime forward pass in this process (any environment: rex-xai's or ours).

`install` replaces ``onnxruntime.InferenceSession`` with a subclass, so sessions a tool creates itself get:
thread spinning off (spinning threads steal the CPU from the tool's own work on a small machine), the same
intra/inter-op thread counts for every tool, and a counter of samples, calls, wall seconds and CPU seconds
spent in ``run``. With one intra-op thread onnxruntime computes on the calling thread, so the CPU clock of
that thread is the model's CPU time even when other processes share the machine.
"""

from __future__ import annotations

import time


def install(threads: int) -> dict:
    """Patch onnxruntime; returns the live counters dict (``passes``, ``calls``, ``seconds``, ``cpu_seconds``)."""
    import onnxruntime as ort

    counters = {"passes": 0, "calls": 0, "seconds": 0.0, "cpu_seconds": 0.0}
    original = ort.InferenceSession
    if getattr(original, "_bench_counted", False):
        return original._bench_counters

    class CountedSession(original):
        _bench_counted = True
        _bench_counters = counters

        def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None, **kwargs):
            options = sess_options or ort.SessionOptions()
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
            if threads > 0:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
            super().__init__(path_or_bytes, sess_options=options, providers=providers,
                             provider_options=provider_options, **kwargs)

        def run(self, output_names, input_feed, run_options=None):
            wall, cpu = time.perf_counter(), time.thread_time()
            result = super().run(output_names, input_feed, run_options)
            counters["cpu_seconds"] += time.thread_time() - cpu
            counters["seconds"] += time.perf_counter() - wall
            counters["calls"] += 1
            counters["passes"] += int(next(iter(input_feed.values())).shape[0])
            return result

    ort.InferenceSession = CountedSession
    return counters


def reset(counters: dict) -> None:
    counters.update(passes=0, calls=0, seconds=0.0, cpu_seconds=0.0)
