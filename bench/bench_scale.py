"""Scale benchmarks: forward-pass efficiency, memory at 256³, and Dask scaling (CPU).

    python bench/bench_scale.py                          # all sections
    python bench/bench_scale.py --sections dask --cases 4 --iterations 3

Sections (each prints a Markdown table; all numbers also go to ``bench/results/scale.json``):

* ``efficiency``: share of an explanation's wall time spent inside the model's forward calls
  (`LoadedModel.forward_seconds` / `voxcause.explain` wall time) for the sample 3D classifier (DenseNet,
  grid 48×56×48) and segmenter (UNet, grid 56×64×56) on a sample patient at 2 mm (99×117×95) and 1 mm
  (197×233×189). The rest is the engine (masks, ranking, extraction) plus moving the image to the model grid
  and back. When the trained sample models are missing, stand-ins with the same architecture and seeded
  random weights are used: the forward cost is the same, the decision is not (the segmenter then explains
  the patient's tumour mask as its region). ``--precisions fp32,bf16`` adds rows with the forward pass under
  bf16 autocast (``load_model(precision=...)``) and ``--compile`` rows with ``torch.compile``.
* ``memory``: a 256³ (1 mm whole-head) single-channel volume explained on CPU by a full-resolution
  convolutional model (no resizing: every mutant is 256³), in a fresh subprocess; peak RSS from
  ``resource.getrusage`` (the process's high-water mark) and the RSS after loading, so the explanation's
  own bound is the difference.
* ``dask``: the same batch (sample classifier, one case per row) on a Dask ``LocalCluster`` with 1 and 2
  worker processes (1 Dask thread each), on this machine; each case gets torch threads = cores / Dask threads
  on the host (the batch's default, printed per row); wall time of the batch, excluding the cluster's start
  and a first warm-up case per worker count (model load and first-call costs are paid by each worker).

Numbers depend on the machine and on what else runs on it: the load average is printed with each table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


# ---- inputs ----------------------------------------------------------------------------------------------
def sample_card(name: str, folder: Path) -> tuple[Path, str]:
    """The trained sample model's card, or a stand-in with the same network and seeded random weights."""
    from voxcause.samples.cards import build_network, model_path
    from voxcause.samples.training import SPECS

    try:
        return model_path(name), "trained"
    except ValueError:  # InputError: not trained (yet) in this checkout
        pass
    target = folder / f"standin-{name}"
    if not (target / "card.json").exists():
        spec = SPECS[name]
        torch.manual_seed(0)
        network = build_network(spec["network"]).eval()
        target.mkdir(parents=True, exist_ok=True)
        torch.save(network.state_dict(), target / "weights.pt")
        card = {"name": f"{name} (stand-in)", "task": spec["task"], "network": spec["network"],
                "weights": "weights.pt", "labels": spec["labels"], "channels": ["T1", "T1c", "T2", "FLAIR"],
                "spatial_size": spec["spatial_size"], "normalize": "zscore", "activation": "softmax",
                "resize": "resize"}
        (target / "card.json").write_text(json.dumps(card, indent=2))
    return target / "card.json", "stand-in (random weights)"


def patient_files(resolution: float, folder: Path, seed: int = 1) -> tuple[list[Path], Path, tuple[int, ...]]:
    """A sample glioma patient written as one NIfTI per channel, plus its whole-tumour mask."""
    from voxcause.samples.generator import make_patient

    patient = make_patient(seed, "glioma", resolution)
    paths = []

    def write(array: np.ndarray, path: Path) -> Path:
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(patient.spacing)
        image.SetOrigin(patient.origin)
        image.SetDirection(patient.direction)
        sitk.WriteImage(image, str(path))
        return path

    tag = f"{resolution:g}mm"
    for index, channel in enumerate(patient.channels):
        paths.append(write(channel, folder / f"patient{seed}-{tag}-c{index}.nii.gz"))
    mask = write((patient.label > 0).astype(np.uint8), folder / f"patient{seed}-{tag}-tumour.nii.gz")
    return paths, mask, tuple(patient.channels.shape[1:])


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPU cores"


# ---- efficiency --------------------------------------------------------------------------------------------
def efficiency(folder: Path, iterations: int, resolutions: list[float], precisions: list[str],
               compile_too: bool) -> list[dict]:
    import voxcause
    from voxcause.models import load_model

    rows = []
    speeds = [(precision, False) for precision in precisions] + ([("fp32", True)] if compile_too else [])
    for resolution in resolutions:
        files, mask, shape = patient_files(resolution, folder)
        for name, (precision, compiled) in [(n, s) for n in ("classifier3d", "segmenter3d") for s in speeds]:
            card, kind = sample_card(name, folder)
            model = load_model(card, precision=precision, compile=compiled)
            region = str(mask) if name == "segmenter3d" else None
            if compiled:  # compiling (one graph per batch shape) is paid once per worker and model, not per case
                voxcause.explain([str(p) for p in files], model=model, region=region, seed=1, iterations=iterations)
            before = model.forward_seconds
            started = time.perf_counter()
            explanation = voxcause.explain([str(p) for p in files], model=model, region=region, seed=0,
                                           iterations=iterations)
            wall = time.perf_counter() - started
            forward = model.forward_seconds - before
            saved = time.perf_counter()
            explanation.save(folder / f"eff-{name}-{resolution:g}")
            save_seconds = time.perf_counter() - saved
            rows.append({
                "model": f"{name} ({kind})", "resolution_mm": resolution, "image": "x".join(map(str, shape)),
                "model_grid": "x".join(map(str, model.card.spatial_size)), "iterations": iterations,
                "precision": precision + (" + compile" if model.compiled is not None else ""),
                "forward_passes": explanation.stats["forward_passes"], "wall_s": round(wall, 2),
                "forward_s": round(forward, 2), "forward_share": round(forward / wall, 3),
                "save_s": round(save_seconds, 2),
            })
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


# ---- memory at 256³ ------------------------------------------------------------------------------------------
MEMORY_SCRIPT = r"""
import json, resource, sys, time
import numpy as np, SimpleITK as sitk, torch
import voxcause

torch.set_num_threads(int(sys.argv[4]))
size, iterations, folder = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

class BrightSpot(torch.nn.Module):
    # full-resolution detector: 3x3x3 box mean, global max, logit = 20 * (max - 0.8)
    def __init__(self):
        super().__init__()
        self.local = torch.nn.Conv3d(1, 1, 3, padding=1, bias=False)
        with torch.no_grad():
            self.local.weight.fill_(1.0 / 27.0)
    def forward(self, x):
        peak = self.local(x).flatten(1).amax(dim=1)
        logit = 20.0 * (peak - 0.8)
        return torch.stack([torch.zeros_like(logit), logit], dim=1)

rng = np.random.default_rng(0)
array = rng.normal(0.0, 0.1, (size, size, size)).astype(np.float32)
zz, yy, xx = np.ogrid[:size, :size, :size]
c = (int(size * 0.3), int(size * 0.6), int(size * 0.45))
array[(zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= (size // 25) ** 2] += 2.0
image = sitk.GetImageFromArray(array)
image.SetSpacing((1.0, 1.0, 1.0))
sitk.WriteImage(image, folder + "/big.nii.gz")
torch.jit.script(BrightSpot().eval()).save(folder + "/spot.ts")
del array, image
loaded = voxcause.load_model(folder + "/spot.ts", batch_size=int(sys.argv[5]))
volume = voxcause.read_image(folder + "/big.nii.gz")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
explanation = voxcause.explain(volume, model=loaded, target=1, seed=0, iterations=iterations)
wall = time.perf_counter() - started
explanation.save(folder + "/out")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
# the cause's centre carries the map's top value (ReX maps are blockwise, so argmax alone picks a block corner)
hit = explanation.map[c] >= 0.999 * explanation.map.max()
print(json.dumps({"size": size, "iterations": iterations, "batch_size": loaded.batch_size,
                  "forward_passes": explanation.stats["forward_passes"], "wall_s": round(wall, 1),
                  "forward_share": round(loaded.forward_seconds / wall, 3),
                  "rss_after_load_gb": round(base / 2**20, 2), "peak_rss_gb": round(peak / 2**20, 2),
                  "volume_gb": round(size**3 * 4 / 2**30, 3), "cause_in_top_block": bool(hit)}))
"""


def _capped(limit_gb: float):
    """Cap the child's address space so an unbounded run fails in its own process instead of pushing a shared
    machine into the OOM killer."""
    def apply() -> None:
        import resource

        limit = int(limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def memory(folder: Path, sizes: list[int], iterations: int, threads: int, batch_sizes: list[int],
           cap_gb: float) -> list[dict]:
    import psutil

    rows = []
    script = folder / "memory_run.py"  # a file, not -c: torch.jit.script reads the class's source
    script.write_text(MEMORY_SCRIPT)
    for size in sizes:
        for batch_size in batch_sizes:
            command = [sys.executable, str(script), str(size), str(iterations), str(folder), str(threads),
                       str(batch_size)]
            child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=_capped(cap_gb))
            seen = 0
            watcher = psutil.Process(child.pid)
            while child.poll() is None:
                try:
                    seen = max(seen, watcher.memory_info().rss)
                except psutil.Error:
                    break
                time.sleep(0.2)
            out, err = child.communicate()
            if child.returncode == 0:
                row = json.loads(out.strip().splitlines()[-1])
            else:
                last = (err.strip().splitlines() or ["killed"])[-1][:160]
                row = {"size": size, "iterations": iterations, "batch_size": batch_size, "forward_passes": "",
                       "wall_s": "", "forward_share": "", "rss_after_load_gb": "",
                       "peak_rss_gb": f"> {cap_gb:g} (cap hit; sampled {seen / 2**30:.1f})",
                       "volume_gb": round(size**3 * 4 / 2**30, 3), "cause_in_top_block": f"failed: {last}"}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    return rows


# ---- Dask scaling -------------------------------------------------------------------------------------------
def dask_scaling(folder: Path, cases: int, iterations: int, workers_list: list[int],
                 case_threads: list[int | None]) -> list[dict]:
    from distributed import LocalCluster
    from voxcause.batch import Job, read_manifest, run_batch

    files, _, _ = patient_files(2.0, folder)
    card, kind = sample_card("classifier3d", folder)
    manifest = folder / "scaling.csv"
    cell = ";".join(str(p) for p in files)
    manifest.write_text("image,id\n" + "".join(f"\"{cell}\",case{i}\n" for i in range(cases)))
    warmup = folder / "warmup.csv"
    warmup.write_text("image,id\n" + "".join(f"\"{cell}\",warm{i}\n" for i in range(max(workers_list))))
    rows = []
    for workers, threads in [(w, t) for w in workers_list for t in case_threads]:
        # threads None: the batch's default share (host cores / Dask threads on the host)
        job = Job(method="rex", seed=0, options={"iterations": iterations}, threads=threads)
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster:
            if threads is not None and threads == cluster_threads(cluster.scheduler_address):
                continue  # the default already gives this many threads: a duplicate row
            # one case per worker first: imports and model loading are a worker's start-up, not throughput
            run_batch(read_manifest(warmup, model=str(card))[:workers], job,
                      out=folder / f"warm-{workers}-{threads}", scheduler=cluster.scheduler_address)
            started = time.perf_counter()
            report = run_batch(read_manifest(manifest, model=str(card)), job,
                               out=folder / f"dask-{workers}-{threads}", scheduler=cluster.scheduler_address)
            wall = time.perf_counter() - started
            used = threads or cluster_threads(cluster.scheduler_address)
        assert not report.failed, report.failed
        rows.append({"workers": workers, "torch_threads_per_case": f"{used}{'' if threads else ' (default)'}",
                     "cases": cases,
                     "model": f"classifier3d ({kind})", "iterations": iterations,
                     "wall_s": round(wall, 1), "cases_per_min": round(60 * cases / wall, 2),
                     "mean_case_s": round(float(np.mean([r.seconds for r in report.results])), 1)})
        print(json.dumps(rows[-1]), file=sys.stderr)
    single = min((row["wall_s"] for row in rows if row["workers"] == 1), default=None)
    for row in rows:  # against the fastest one-worker setting: what adding a worker really buys
        row["speedup_vs_best_1_worker"] = round(single / row["wall_s"], 2) if single else ""
    return rows


def cluster_threads(address: str) -> int:
    """Torch threads a case gets on this cluster's workers (the batch's default policy, asked on a worker)."""
    from distributed import Client
    from voxcause.batch.distributed import host_threads, worker_threads

    with Client(address, set_as_default=False) as client:
        shares = host_threads(client)
        return int(client.submit(worker_threads, shares, pure=False).result())


def table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="efficiency,memory,dask", help="comma-separated sections to run")
    parser.add_argument("--iterations", type=int, default=5, help="ReX iterations per explanation (default 5)")
    parser.add_argument("--resolutions", default="2,1", help="efficiency: patient resolutions in mm (default 2,1)")
    parser.add_argument("--precisions", default="fp32", help="efficiency: forward precisions, e.g. fp32,bf16")
    parser.add_argument("--compile", action="store_true", help="efficiency: add fp32 rows with torch.compile")
    parser.add_argument("--sizes", default="256", help="memory: edges of the cubic volumes (default 256)")
    parser.add_argument("--batch-sizes", default="16,4", help="memory: mutants per forward call to try")
    parser.add_argument("--memory-cap-gb", type=float, default=12.0,
                        help="memory: address-space cap of the measured process (default 12 GB)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads (efficiency, memory)")
    parser.add_argument("--cases", type=int, default=4, help="dask: cases in the batch (default 4)")
    parser.add_argument("--workers", default="1,2", help="dask: worker counts to compare (default 1,2)")
    parser.add_argument("--case-threads", default="auto,1",
                        help="dask: torch threads per case to compare, 'auto' = the batch default (default auto,1)")
    args = parser.parse_args()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="voxcause-bench-") as temp:
        folder = Path(temp)
        if "efficiency" in sections:
            torch.set_num_threads(args.threads)
            resolutions = [float(r) for r in args.resolutions.split(",")]
            precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
            results["efficiency"] = efficiency(folder, args.iterations, resolutions, precisions, args.compile)
            print(f"\n## Forward-pass efficiency (CPU, {torch.get_num_threads()} torch threads; {load_average()})\n")
            print(table(results["efficiency"]))
        if "memory" in sections:
            batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
            sizes = [int(v) for v in args.sizes.split(",")]
            results["memory"] = memory(folder, sizes, args.iterations, args.threads, batch_sizes, args.memory_cap_gb)
            print(f"\n## Large volumes on CPU: peak memory ({load_average()})\n")
            print(table(results["memory"]))
        if "dask" in sections:
            workers = [int(w) for w in args.workers.split(",")]
            case_threads = [None if t.strip() == "auto" else int(t) for t in args.case_threads.split(",") if t.strip()]
            results["dask"] = dask_scaling(folder, args.cases, args.iterations, workers, case_threads)
            print(f"\n## Dask LocalCluster scaling on one machine ({load_average()})\n")
            print(table(results["dask"]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stored = RESULTS / "scale.json"
    previous = json.loads(stored.read_text(encoding="utf-8")) if stored.exists() else {}
    stored.write_text(json.dumps({**previous, **results}, indent=2))  # a section run alone keeps the others


if __name__ == "__main__":
    main()
