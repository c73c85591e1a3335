"""Run rex-xai 0.4.1's own command line on one volume, measured; runs inside rex-xai's environment.

Usage (the benchmark calls it): ``python rex_runner.py VOLUME.nii.gz --model M.onnx --config rex.toml
--script rex_preprocess.py --out result.json --map map.npy``

What it adds around ``ReX VOLUME --model M --script S -c rex.toml`` (rex_xai.rex_wrapper.main), and why:

* onnxruntime's thread spinning off (rex-xai gives its CPU session default options; spinning threads fight
  torch's for the 2 cores) and torch on 1 thread (rex-xai builds masks with torch): PEERS.md measured
  identical work taking 7-70 s instead of ~5 s without this;
* a counter and a clock on every ``InferenceSession.run`` call: forward passes (samples) and model seconds;
* clocks on its responsibility and extraction phases, and the responsibility map saved as ``.npy``;
* peak memory (resident set high-water mark, reset after start-up and a one-sample warm-up forward).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import measure  # noqa: E402
import ort_counter  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("volume")
    parser.add_argument("--model", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--script", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--map", required=True)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (0: its default)")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile the explanation (CPU clock)")
    args = parser.parse_args()

    import numpy as np
    import onnxruntime as ort
    import torch

    os.environ.setdefault("TQDM_DISABLE", "1")

    torch.set_num_threads(args.torch_threads)
    counters = ort_counter.install(args.threads)

    import rex_xai.explanation.explanation as rex_explanation_module
    import rex_xai.explanation.rex as rex_module
    from rex_xai import rex_wrapper

    phases = {"responsibility": 0.0, "extraction": 0.0}
    phases_cpu = {"responsibility": 0.0, "extraction": 0.0}
    captured: dict = {}

    responsibility = rex_module.calculate_responsibility

    def timed_responsibility(*a, **k):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return responsibility(*a, **k)
        finally:
            phases["responsibility"] += time.perf_counter() - start
            phases_cpu["responsibility"] += time.process_time() - cpu

    rex_module.calculate_responsibility = timed_responsibility

    extract = rex_explanation_module.Explanation.extract

    def timed_extract(self):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return extract(self)
        finally:
            phases["extraction"] += time.perf_counter() - start
            phases_cpu["extraction"] += time.process_time() - cpu

    rex_explanation_module.Explanation.extract = timed_extract

    run_explanation = rex_module._explanation

    def measured_explanation(*a, **k):
        ort_counter.reset(counters)
        measure.reset_peak()
        captured["baseline_mb"] = measure.rss_mb()
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
        start, cpu = time.perf_counter(), time.process_time()
        result = run_explanation(*a, **k)
        captured["wall"] = time.perf_counter() - start
        if profiler is not None:
            profiler.disable()
            captured["profile"] = _top(profiler)
        captured["cpu"] = time.process_time() - cpu
        captured["peak_mb"] = measure.peak_mb()
        captured["explanation"] = result
        return result

    rex_module._explanation = measured_explanation

    # Warm-up: one single-sample forward in a separate session, so the baseline holds onnxruntime's
    # start-up cost as it does for the other tools (which load their model before the clock starts).
    warm = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    shape = [1 if not isinstance(d, int) else d for d in warm.get_inputs()[0].shape]
    warm.run(None, {warm.get_inputs()[0].name: np.zeros(shape, np.float32)})
    del warm

    sys.argv = ["ReX", args.volume, "--model", args.model, "--script", args.script, "-c", args.config, "-q"]
    rex_wrapper.main()

    explanation = captured["explanation"]
    target_map = explanation.target_map.detach().cpu().numpy().astype(np.float32)
    np.save(args.map, target_map)
    mask = explanation.sufficiency_mask
    result = {
        "tool": "rex-xai 0.4.1",
        "wall": captured["wall"],
        "cpu": captured["cpu"],
        "forward_passes": counters["passes"],
        "model_calls": counters["calls"],
        "model_seconds": counters["seconds"],
        "model_cpu_seconds": counters["cpu_seconds"],
        "phases": phases,
        "phases_cpu": phases_cpu,
        "baseline_mb": captured["baseline_mb"],
        "peak_mb": captured["peak_mb"],
        "sufficient_voxels": int(mask.sum()) if mask is not None else None,
        "target": int(explanation.data.target.classification),
        "run_stats": {k: float(v) for k, v in explanation.run_stats.items()},
        "map_shape": list(target_map.shape),
    }
    if "profile" in captured:
        result["profile"] = captured["profile"]
    measure.write_result(args.out, result)


def _top(profiler, count: int = 15) -> list[str]:
    """The costliest functions by own CPU time."""
    import pstats

    rows = pstats.Stats(profiler).stats
    top = sorted(rows.items(), key=lambda item: item[1][2], reverse=True)[:count]
    return [f"{own:7.3f}s own {cum:7.3f}s cum {calls:>8} calls  {os.path.basename(fn)}:{line} {name}"
            for (fn, line, name), (_, calls, own, cum, _) in top]


if __name__ == "__main__":
    main()
