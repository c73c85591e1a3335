"""Causal responsibility benchmark: voxcause rex vs rex-xai 0.4.1 vs MONAI OcclusionSensitivity.

One run, one model, the same volumes for every tool: a small 3D CNN with hand-set weights
(`bench/peers/sphere_model.py`: 4 convolutions, global max pool, 2 classes) whose true cause is a bright ball,
beside a same-brightness, same-volume cube the model ignores, at 64^3 and 128^3. Every tool gets the same
ONNX export of that network (rex-xai a wrapper taking (N, D, H, W)), the same onnxruntime settings (thread
spinning off, ``--threads`` intra-op threads) and torch on ``--torch-threads`` threads, runs in its own
subprocess, and is measured the same way:

* wall and CPU seconds of the explanation call (after imports, model loading and a one-sample warm-up);
* forward passes (samples through the model) and the share of the time spent inside the model's ``run``;
* peak resident memory during the call, and the peak beyond the process's footprint before it;
* localisation against the known cause: rank accuracy (share of the top-|cause| voxels inside the cause,
  ties counted fractionally), share of the positive map mass inside the cause (and on the decoy), and
  whether the map's peak lies in the cause.

rex-xai pins numpy 1.26, so the script installs it into its own environment (``--rex-venv``, default
``.venv-rex`` at the repository root) on first use.

Usage:
    python bench/bench_causal.py                      # 64^3 and 128^3, seeds 0 100 200, all tools
    python bench/bench_causal.py --sizes 64 --tools rex,monai
    python bench/bench_causal.py --profile            # also a cProfile breakdown of voxcause at each size

Results: a Markdown table on stdout and in ``bench/results/causal.md``; raw JSON per run beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = HERE / "peers"
sys.path.insert(0, str(PEERS))

import measure  # noqa: E402
import ort_counter  # noqa: E402

TOOLS = ("voxcause", "rex", "monai")
REX_VERSION = "0.4.1"
TORCH_VERSION = "2.13.0"
REX_TOML = """[rex]
mask_value = 0
seed = {seed}
gpu = false
batch_size = {batch}

[rex.onnx]

[rex.visual]
progress_bar = false

[causal]
iters = {iterations}

[causal.distribution]
distribution = 'uniform'

[explanation]

[explanation.spatial]

[explanation.multi]

[explanation.evaluation]
"""


# ---- environments ---------------------------------------------------------------------------------------
def ensure_rex_env(venv: Path) -> Path:
    """rex-xai 0.4.1 in its own venv (it pins numpy 1.26): torch first, then rex-xai, nibabel for NIfTI."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import rex_xai, nibabel, onnxruntime, importlib.metadata as m; "
             f"assert m.version('rex-xai') == '{REX_VERSION}'"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing rex-xai {REX_VERSION} into {venv} (a few minutes, once)", file=sys.stderr)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    constraints = ROOT / ".ci" / "constraints.txt"
    pin = ["-c", str(constraints)] if constraints.exists() else []
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, f"torch=={TORCH_VERSION}", *pin], check=True)
    subprocess.run([*pip, f"rex-xai=={REX_VERSION}", "numpy==1.26.4", "nibabel", *pin], check=True)
    subprocess.run(probe, check=True)
    return python


# ---- cases ----------------------------------------------------------------------------------------------
@dataclass
class CaseFiles:
    size: int
    volume: Path
    onnx: Path
    onnx_rex: Path
    cause: np.ndarray
    decoy: np.ndarray
    per_sample_ms: float = 0.0


def build_case(size: int, work: Path, *, threads: int) -> CaseFiles:
    """Write the volume (NIfTI), both ONNX exports and the masks; time one model pass per sample."""
    import SimpleITK as sitk
    import sphere_model

    case = sphere_model.make_case(size)
    network = sphere_model.SphereDetector(case.radius).eval()
    files = CaseFiles(size=size, volume=work / f"case{size}.nii.gz", onnx=work / f"model{size}.onnx",
                      onnx_rex=work / f"model{size}_ndhw.onnx", cause=case.cause, decoy=case.decoy)
    sphere_model.export_onnx(network, size, str(files.onnx))
    sphere_model.export_onnx(network, size, str(files.onnx_rex), channel_axis=False)
    sitk.WriteImage(sitk.GetImageFromArray(case.image), str(files.volume))
    np.save(work / f"cause{size}.npy", case.cause)
    np.save(work / f"decoy{size}.npy", case.decoy)
    files.per_sample_ms = _per_sample_ms(files.onnx, case.image, threads=threads)
    return files


def _per_sample_ms(onnx: Path, image: np.ndarray, *, threads: int, batch: int = 16) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads > 0:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
    x = np.repeat(image[None, None], batch, axis=0)
    session.run(None, {"input": x})
    start = time.thread_time() if threads == 1 else time.perf_counter()
    session.run(None, {"input": x})
    spent = (time.thread_time() if threads == 1 else time.perf_counter()) - start
    return 1000 * spent / batch


# ---- workers (each in its own process) --------------------------------------------------------------------
def worker_voxcause(args: argparse.Namespace) -> None:
    import torch

    counters = ort_counter.install(args.threads)
    torch.set_num_threads(args.torch_threads)
    import voxcause
    from voxcause.io import read_image
    from voxcause.models import load_model

    model = load_model(args.model, task="classification", labels=["absent", "present"])
    volume = read_image(args.volume)
    model.predict(model.prepare(volume))  # warm-up: the session's first run allocates its arena
    options = {"explanations": tuple(args.explanations.split(",")) if args.explanations else ()}
    if args.iterations:
        options["iterations"] = args.iterations
    if args.occlusion:
        options["occlusion"] = args.occlusion
    if args.merge:
        options["merge"] = args.merge
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU clock: other load on the machine does not count
    ort_counter.reset(counters)
    measure.reset_peak()
    baseline = measure.rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    result = voxcause.explain(args.volume, model=model, seed=args.seed, **options)
    if profiler:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = measure.peak_mb()
    np.save(args.map, np.asarray(result.map, dtype=np.float32))
    stats = {k: v for k, v in result.stats.items() if isinstance(v, int | float | str | dict | list)}
    masks = {name: int(np.asarray(mask).sum()) for name, mask in result.masks.items()}
    out = {"tool": f"voxcause {getattr(voxcause, '__version__', '')}".strip(), "wall": wall, "cpu": cpu,
           "forward_passes": counters["passes"], "model_calls": counters["calls"],
           "model_seconds": counters["seconds"], "model_cpu_seconds": counters["cpu_seconds"],
           "baseline_mb": baseline, "peak_mb": peak, "stats": stats, "mask_voxels": masks,
           "sufficient_voxels": masks.get("sufficient"), "target": result.target}
    if profiler:
        out["profile"] = profile_breakdown(profiler, wall_seconds=wall)
        profiler.dump_stats(str(Path(args.out).with_suffix(".prof")))
    measure.write_result(args.out, out)


def worker_monai(args: argparse.Namespace) -> None:
    import onnxruntime as ort
    import SimpleITK as sitk
    import torch
    from monai.visualize import OcclusionSensitivity

    counters = ort_counter.install(args.threads)
    torch.set_num_threads(args.torch_threads)
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])

    class OnnxNet(torch.nn.Module):
        """The same ONNX model as the other tools, called like a torch module."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {"input": x.detach().float().numpy()})[0])

    net = OnnxNet().eval()
    image = torch.from_numpy(sitk.GetArrayFromImage(sitk.ReadImage(args.volume)).astype(np.float32))[None, None]
    net(image)  # warm-up

    def softmax(logits: torch.Tensor) -> torch.Tensor:  # MONAI would pick sigmoid for a 1-channel input
        return torch.softmax(logits, dim=1)

    occlusion = OcclusionSensitivity(net, mask_size=args.mask, n_batch=16, mode=0.0, overlap=0.5,
                                     activate=softmax, verbose=False)
    ort_counter.reset(counters)
    measure.reset_peak()
    baseline = measure.rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        original = softmax(net(image))[0]
        target = int(original.argmax())
        occluded, _ = occlusion(image)
    # MONAI returns the probability *with* the patch hidden: importance = original - occluded.
    importance = (original[target] - occluded[0, target]).numpy().astype(np.float32)  # map: (1, classes, *S)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = measure.peak_mb()
    np.save(args.map, importance)
    measure.write_result(args.out, {
        "tool": f"MONAI OcclusionSensitivity (mask {args.mask}, overlap 0.5)", "wall": wall, "cpu": cpu,
        "forward_passes": counters["passes"], "model_calls": counters["calls"],
        "model_seconds": counters["seconds"], "model_cpu_seconds": counters["cpu_seconds"],
        "baseline_mb": baseline, "peak_mb": peak, "target": target})


# ---- profiling -----------------------------------------------------------------------------------------------
def profile_breakdown(profiler, *, wall_seconds: float) -> dict:
    """Seconds per stage from a cProfile run, by function, plus the 12 costliest functions (own time)."""
    import pstats

    stats = pstats.Stats(profiler)
    rows = stats.stats  # (file, line, name) -> (cc, nc, tottime, cumtime, callers)
    by_name: dict[str, float] = {}
    for (filename, _, name), (_, _, _, cumtime, _) in rows.items():
        if "voxcause" in filename or "onnxruntime" in filename or name in ("run",):
            key = name
            by_name[key] = max(by_name.get(key, 0.0), cumtime)
    forward = sum(own for (_, _, name), (_, _, own, _, _) in rows.items()
                  if "onnxruntime" in name and name.endswith(".run>"))
    building = sum(by_name.get(n, 0.0) for n in ("_evaluate", "_mutants_from_rank", "_mask_passes"))
    score = by_name.get("_score", 0.0)
    out = {
        "total_profiled (CPU)": sum(row[2] for row in rows.values()),
        "wall (inflated by profiling)": wall_seconds,
        "model_forward": forward,
        "mutant_building": max(0.0, building - score),
        "scoring_overhead": max(0.0, score - forward),
        "search_total (_search)": by_name.get("_search", 0.0),
        "ranking (rank_voxels)": by_name.get("rank_voxels", 0.0),
        "extraction total (_extract)": by_name.get("_extract", 0.0),
        "merging (_merge)": by_name.get("_merge", 0.0),
        "partitioning (split_box)": by_name.get("split_box", 0.0),
        "pruning (prune_components)": by_name.get("prune_components", 0.0),
        "foreground + baseline": by_name.get("foreground_mask", 0.0) + by_name.get("occlusion_baseline", 0.0),
        "blur (gaussian_blur)": by_name.get("gaussian_blur", 0.0),
        "read_image": by_name.get("read_image", 0.0),
        "prepare": by_name.get("prepare", 0.0),
        "to_image_space": by_name.get("to_image_space", 0.0),
    }
    top = sorted(rows.items(), key=lambda item: item[1][2], reverse=True)[:12]
    out["top_own_time"] = [f"{tt:7.3f}s  {ncalls:>8} calls  {Path(fn).name}:{line} {name}"
                           for (fn, line, name), (_, ncalls, tt, _, _) in top]
    return out


# ---- metrics ---------------------------------------------------------------------------------------------------
def rank_accuracy(values: np.ndarray, cause: np.ndarray) -> float:
    """Share of the top-|cause| voxels inside the cause; voxels tied at the cut count fractionally."""
    k = int(cause.sum())
    flat = values.ravel().astype(np.float64)
    inside = cause.ravel()
    kth = np.partition(flat, flat.size - k)[flat.size - k]
    above = flat > kth
    tied = flat == kth
    need = k - int(above.sum())
    share_tied = need / int(tied.sum()) if tied.any() else 0.0
    hits = int((above & inside).sum()) + share_tied * int((tied & inside).sum())
    return hits / k


def localisation(values: np.ndarray, cause: np.ndarray, decoy: np.ndarray) -> dict:
    positive = np.clip(values.astype(np.float64), 0, None)
    total = positive.sum()
    peak = values.max()
    at_peak = values == peak
    return {
        "rank_accuracy": rank_accuracy(values, cause),
        "mass_in_cause": float(positive[cause].sum() / total) if total > 0 else 0.0,
        "mass_on_decoy": float(positive[decoy].sum() / total) if total > 0 else 0.0,
        "peak_hit": bool((at_peak & cause).sum() / at_peak.sum() >= 0.5),
    }


# ---- orchestration ---------------------------------------------------------------------------------------
@dataclass
class Run:
    size: int
    tool: str
    label: str
    seed: int | None
    result: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    error: str | None = None


def monai_windows(size: int, mask: int, overlap: float = 0.5) -> int:
    step = max(1, int(mask * (1 - overlap)))
    per_axis = math.ceil((size - mask) / step) + 1
    return per_axis**3


def run_tool(cmd: list[str], run: Run, out: Path, map_path: Path, case: CaseFiles, *, timeout: float) -> Run:
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, run_threads)), TQDM_DISABLE="1",
               PYTHONPATH=os.pathsep.join([str(ROOT / "core"), os.environ.get("PYTHONPATH", "")]))
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        run.error = " | ".join(tail) or f"exit {proc.returncode}"
        print(f"  {run.label} seed {run.seed}: FAILED: {run.error}", file=sys.stderr)
        return run
    run.result = json.loads(out.read_text(encoding="utf-8"))
    values = np.load(map_path)
    if values.shape != case.cause.shape:
        run.error = f"map shape {values.shape} != volume {case.cause.shape}"
        return run
    run.metrics = localisation(values, case.cause, case.decoy)
    r = run.result
    print(f"  {run.label:<28} seed {run.seed!s:>4}: {r['wall']:6.1f} s wall, {r['cpu']:6.1f} s CPU, "
          f"{r['forward_passes']:>6} passes, model {r['model_cpu_seconds'] / max(r['cpu'], 1e-9):4.0%} of CPU, "
          f"peak +{r['peak_mb'] - r['baseline_mb']:.0f} MB, rank acc {run.metrics['rank_accuracy']:.2f}, "
          f"mass {run.metrics['mass_in_cause']:.2f}, peak {'hit' if run.metrics['peak_hit'] else 'miss'} "
          f"[{time.perf_counter() - started:.0f} s incl. start-up]", file=sys.stderr)
    return run


run_threads = 1


def main(argv: list[str] | None = None) -> int:
    global run_threads
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 100, 200],
                        help="rex-xai seeds its iteration i with seed + i: keep seeds far apart")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma list of voxcause, rex, monai")
    parser.add_argument("--iterations", type=int, default=20, help="rex-xai's random partitions (its default 20)")
    parser.add_argument("--voxcause-iterations", type=int, default=0,
                        help="voxcause's random partitions (default 0: its own default, 12)")
    parser.add_argument("--rex-batch", type=int, default=14, help="rex-xai batch_size (14 mutants per split)")
    parser.add_argument("--explanations", default="sufficient",
                        help="voxcause explanations to extract (rex-xai extracts one sufficient explanation)")
    parser.add_argument("--voxcause-merges", nargs="+", default=["default"],
                        help="voxcause merge rules to run, each its own row: default additive multiplicative")
    parser.add_argument("--monai-masks", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--monai-max-passes", type=int, default=6000,
                        help="skip MONAI settings needing more forward passes than this")
    parser.add_argument("--threads", type=int, default=1,
                        help="onnxruntime intra-op threads for every tool (1: CPU time is exact under load)")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--rex-venv", type=Path, default=ROOT / ".venv-rex")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--profile", action="store_true", help="cProfile voxcause (extra run per size)")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--from-json", type=Path, nargs="+",
                        help="only re-render the table from earlier runs' causal.json files")
    args = parser.parse_args(argv)
    run_threads = args.threads
    if args.from_json:
        return combine(args.from_json, args)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tool(s) {sorted(unknown)}; use {', '.join(TOOLS)}")
    work = args.out / "causal"
    work.mkdir(parents=True, exist_ok=True)
    rex_python = ensure_rex_env(args.rex_venv) if "rex" in tools else None
    load_before = os.getloadavg()

    runs: list[Run] = []
    profiles: dict[int, dict] = {}
    cases: dict[int, CaseFiles] = {}
    common = ["--threads", str(args.threads), "--torch-threads", str(args.torch_threads)]
    for size in args.sizes:
        case = cases[size] = build_case(size, work, threads=args.threads)
        print(f"{size}^3: model {case.per_sample_ms:.1f} ms per sample (onnxruntime, {args.threads} thread), "
              f"cause {int(case.cause.sum())} voxels, decoy {int(case.decoy.sum())}", file=sys.stderr)
        for tool in tools:
            if tool == "voxcause":
                for merge in args.voxcause_merges:
                    label = "voxcause rex" + ("" if merge == "default" else f" ({merge})")
                    extra = [] if merge == "default" else ["--merge", merge]
                    for seed in args.seeds:
                        stem = work / f"voxcause_{size}_{merge}_{seed}"
                        cmd = [sys.executable, __file__, "_worker", "voxcause", "--model", str(case.onnx),
                               "--volume", str(case.volume), "--seed", str(seed),
                               "--iterations", str(args.voxcause_iterations),
                               "--explanations", args.explanations, "--out", f"{stem}.json", "--map", f"{stem}.npy",
                               *extra, *common]
                        Path(f"{stem}.json").unlink(missing_ok=True)
                        runs.append(run_tool(cmd, Run(size, tool, label, seed), Path(f"{stem}.json"),
                                             Path(f"{stem}.npy"), case, timeout=args.timeout))
                if args.profile:
                    stem = work / f"voxcause_{size}_profile"
                    cmd = [sys.executable, __file__, "_worker", "voxcause", "--model", str(case.onnx),
                           "--volume", str(case.volume), "--seed", str(args.seeds[0]),
                           "--iterations", str(args.voxcause_iterations), "--explanations", args.explanations,
                           "--out", f"{stem}.json", "--map", f"{stem}.npy", "--profile", *common]
                    Path(f"{stem}.json").unlink(missing_ok=True)
                    profiled = run_tool(cmd, Run(size, tool, "voxcause rex (cProfile)", args.seeds[0]),
                                        Path(f"{stem}.json"), Path(f"{stem}.npy"), case, timeout=args.timeout)
                    if profiled.result:
                        profiles[size] = profiled.result.get("profile", {})
            elif tool == "rex":
                for seed in args.seeds:
                    stem = work / f"rex_{size}_{seed}"
                    config = work / f"rex_{seed}.toml"
                    config.write_text(REX_TOML.format(seed=seed, batch=args.rex_batch, iterations=args.iterations))
                    cmd = [str(rex_python), str(PEERS / "rex_runner.py"), str(case.volume), "--model",
                           str(case.onnx_rex), "--config", str(config), "--script", str(PEERS / "rex_preprocess.py"),
                           "--out", f"{stem}.json", "--map", f"{stem}.npy", *common]
                    Path(f"{stem}.json").unlink(missing_ok=True)
                    runs.append(run_tool(cmd, Run(size, tool, f"rex-xai {REX_VERSION}", seed), Path(f"{stem}.json"),
                                         Path(f"{stem}.npy"), case, timeout=args.timeout))
            elif tool == "monai":
                for mask in args.monai_masks:
                    label = f"MONAI occlusion {mask}"
                    windows = monai_windows(size, mask)
                    if windows > args.monai_max_passes:
                        run = Run(size, tool, label, None)
                        seconds = windows * case.per_sample_ms / 1000
                        run.error = (f"skipped: {windows:,} forward passes (~{seconds:.0f} s of model time);"
                                     " raise --monai-max-passes to run it")
                        print(f"  {label}: {run.error}", file=sys.stderr)
                        runs.append(run)
                        continue
                    stem = work / f"monai_{size}_{mask}"
                    cmd = [sys.executable, __file__, "_worker", "monai", "--model", str(case.onnx), "--volume",
                           str(case.volume), "--mask", str(mask), "--out", f"{stem}.json", "--map", f"{stem}.npy",
                           *common]
                    Path(f"{stem}.json").unlink(missing_ok=True)
                    runs.append(run_tool(cmd, Run(size, tool, label, None), Path(f"{stem}.json"),
                                         Path(f"{stem}.npy"), case, timeout=args.timeout))

    load_after = os.getloadavg()
    table = render(runs, cases, args, load_before, load_after, profiles)
    (args.out / "causal.md").write_text(table)
    (args.out / "causal.json").write_text(json.dumps({
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "load": [load_before[0], load_after[0]],
        "cases": {str(size): {"per_sample_ms": case.per_sample_ms} for size, case in cases.items()},
        "profiles": {str(size): prof for size, prof in profiles.items()},
        "runs": [{"size": r.size, "tool": r.tool, "label": r.label, "seed": r.seed, "error": r.error,
                  "metrics": r.metrics, "result": r.result} for r in runs]}, indent=1, default=float))
    print(table)
    return 0


def combine(paths: list[Path], args: argparse.Namespace) -> int:
    """Re-render one table from the JSON of earlier runs (e.g. tools run as separate invocations)."""
    latest: dict[tuple, Run] = {}
    cases: dict[int, CaseFiles] = {}
    profiles: dict[int, dict] = {}
    loads = []
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["runs"] if isinstance(data, dict) else data
        work = path.parent / "causal"
        if isinstance(data, dict):
            loads.append(data.get("load", [0.0, 0.0]))
            profiles.update({int(k): v for k, v in data.get("profiles", {}).items()})
        for entry in entries:
            size = int(entry["size"])
            if size not in cases:
                cause = np.load(work / f"cause{size}.npy")
                cases[size] = CaseFiles(size=size, volume=work / f"case{size}.nii.gz", onnx=work / f"model{size}.onnx",
                                        onnx_rex=work / f"model{size}_ndhw.onnx", cause=cause,
                                        decoy=np.load(work / f"decoy{size}.npy"))
                known = data.get("cases", {}).get(str(size)) if isinstance(data, dict) else None
                cases[size].per_sample_ms = (known or {}).get("per_sample_ms") or _per_sample_ms(
                    cases[size].onnx, _volume_array(cases[size].volume), threads=args.threads)
            latest[(size, entry["label"], entry["seed"])] = Run(
                size, entry["tool"], entry["label"], entry["seed"], entry.get("result") or {},
                entry.get("metrics") or {}, entry.get("error"))
    runs = list(latest.values())  # a later file's run replaces an earlier one of the same size, tool and seed
    order = {tool: i for i, tool in enumerate(TOOLS)}
    runs.sort(key=lambda r: (r.size, order.get(r.tool, 9)))
    low = min((load[0] for load in loads), default=0.0)
    high = max((load[1] for load in loads), default=0.0)
    table = render(runs, dict(sorted(cases.items())), args, (low,), (high,), profiles)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "causal.md").write_text(table)
    print(table)
    return 0


def _volume_array(path: Path) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.float32)


# ---- the report ------------------------------------------------------------------------------------------
def _span(values: list[float], fmt: str) -> str:
    if not values:
        return "–"
    lo, hi = min(values), max(values)
    return format(lo, fmt) if format(lo, fmt) == format(hi, fmt) else f"{format(lo, fmt)}–{format(hi, fmt)}"


def render(runs: list[Run], cases: dict[int, CaseFiles], args, load_before, load_after, profiles) -> str:
    lines = ["# Causal responsibility benchmark", ""]
    lines.append(
        f"Model: 4-conv 3D CNN, global max pool, 2 classes, hand-set weights (bench/peers/sphere_model.py); cause "
        f"= a bright ball, decoy = a same-brightness, same-volume cube the model ignores. All tools run the same "
        f"ONNX export through onnxruntime ({args.threads} intra-op thread, spinning off; torch "
        f"{args.torch_threads} thread), each in its own process, one after another. Seeds: "
        f"{', '.join(map(str, args.seeds))} (MONAI is deterministic: one run). Occlusion 0 for both ReX tools; rex-xai "
        f"{args.iterations} iterations, batch {args.rex_batch}, its defaults otherwise; voxcause "
        f"{args.voxcause_iterations or 'its default (12)'} iterations; "
        f"voxcause explanations: {args.explanations or 'none'}.")
    lines.append("")
    for size, case in cases.items():
        lines.append(f"- {size}³: model {case.per_sample_ms:.1f} ms per sample; cause {int(case.cause.sum()):,} "
                     f"voxels, decoy {int(case.decoy.sum()):,}")
    lines.append(f"- load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} "
                 "(other work on the machine inflates wall time; CPU time does not depend on it)")
    lines.append("")
    lines.append("| size | tool | wall s | CPU s | forward passes | time in model (CPU / wall) | peak RSS MB | peak "
                 "beyond baseline MB | rank acc | mass in cause | mass on decoy | peak hit |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    groups: dict[tuple[int, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.size, run.label), []).append(run)
    for (size, label), members in groups.items():
        ok = [r for r in members if r.result and r.metrics]
        if not ok:
            lines.append(f"| {size}³ | {label} | {members[0].error or 'failed'} |||||||||||")
            continue
        res = [r.result for r in ok]
        met = [r.metrics for r in ok]
        hits = sum(m["peak_hit"] for m in met)
        lines.append(
            f"| {size}³ | {label} | {_span([r['wall'] for r in res], '.1f')} | {_span([r['cpu'] for r in res], '.1f')} "
            f"| {_span([r['forward_passes'] for r in res], ',')} "
            f"| {_span([r['model_cpu_seconds'] / max(r['cpu'], 1e-9) for r in res], '.0%')} / "
            f"{_span([r['model_seconds'] / max(r['wall'], 1e-9) for r in res], '.0%')} "
            f"| {_span([r['peak_mb'] for r in res], '.0f')} "
            f"| {_span([r['peak_mb'] - r['baseline_mb'] for r in res], '.0f')} "
            f"| {_span([m['rank_accuracy'] for m in met], '.2f')} | {_span([m['mass_in_cause'] for m in met], '.2f')} "
            f"| {_span([m['mass_on_decoy'] for m in met], '.2f')} | {hits}/{len(ok)} |")
    lines.append("")
    lines.extend(_speedups(groups))
    for size, prof in profiles.items():
        lines.append("")
        lines.append(f"### voxcause profile at {size}³ (cProfile, seed {args.seeds[0]}; profiling adds overhead)")
        lines.append("")
        lines.append("| stage | seconds |")
        lines.append("|---|---|")
        for key, value in prof.items():
            if isinstance(value, float):
                lines.append(f"| {key} | {value:.2f} |")
        lines.append("")
        lines.append("Costliest functions by own time:")
        lines.append("")
        lines.append("```")
        lines.extend(prof.get("top_own_time", []))
        lines.append("```")
    return "\n".join(lines) + "\n"


def _speedups(groups: dict[tuple[int, str], list[Run]]) -> list[str]:
    out = []
    for size in sorted({s for s, _ in groups}):
        rex = [r for r in groups.get((size, f"rex-xai {REX_VERSION}"), []) if r.result]
        mean = lambda rs, k: sum(r.result[k] for r in rs) / len(rs)  # noqa: E731
        avg = lambda rs, k: sum(r.metrics[k] for r in rs) / len(rs)  # noqa: E731
        for (group_size, label), members in groups.items():
            vox = [r for r in members if r.result and r.metrics]
            if group_size != size or not label.startswith("voxcause") or not vox or not rex:
                continue
            out.append(
                f"- {size}³: {label} vs rex-xai — {mean(rex, 'wall') / mean(vox, 'wall'):.1f}× faster by wall time, "
                f"{mean(rex, 'cpu') / mean(vox, 'cpu'):.1f}× by CPU time, "
                f"forward passes {mean(vox, 'forward_passes'):,.0f} vs {mean(rex, 'forward_passes'):,.0f}; "
                f"mean rank accuracy {avg(vox, 'rank_accuracy'):.2f} vs {avg(rex, 'rank_accuracy'):.2f}, "
                f"mass in cause {avg(vox, 'mass_in_cause'):.2f} vs {avg(rex, 'mass_in_cause'):.2f}")
    return out


def worker_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_causal.py _worker")
    parser.add_argument("tool", choices=("voxcause", "monai"))
    parser.add_argument("--model", required=True)
    parser.add_argument("--volume", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--map", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=0, help="0: voxcause's default")
    parser.add_argument("--explanations", default="sufficient")
    parser.add_argument("--merge", default=None, help="voxcause merge rule (default: its own)")
    parser.add_argument("--occlusion", default="constant", help="voxcause occlusion (constant 0, as rex-xai's)")
    parser.add_argument("--mask", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    {"voxcause": worker_voxcause, "monai": worker_monai}[args.tool](args)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        raise SystemExit(worker_main(sys.argv[2:]))
    raise SystemExit(main())
