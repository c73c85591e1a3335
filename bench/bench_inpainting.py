"""Inpainting benchmark: speed and fidelity of lesion removal on 2 mm and 1 mm brain volumes.

The volumes are nilearn's MNI152 T1 template (offline, shipped with nilearn) at 2 mm (99x117x95) and
1 mm (197x233x189 = 8.7 M voxels). A bright spherical "lesion" (radius 10, 20 or 30 mm, in the right
frontal lobe, 2.5x white-matter intensity with noise) is painted in and then removed with every method of
`voxcause.counterfactual.remove_region` (dilation 2 mm, ring 4 mm). Because the template without the lesion
is known, fidelity is measured against the truth:

* ``seconds``: median wall time of ``--repeats`` runs (the whole call: foreground, masks, solve, noise);
* ``rmse/sd``: root-mean-square error of the filled voxels against the lesion-free template, in units of
  the ring's standard deviation (0 = perfect; ~1.4 = an independent draw of the same tissue);
* ``bias/sd``: mean error in the same units (a residual lesion or a dark hole shows here);
* ``step/sd``: mean of the filled voxels touching kept tissue minus mean of the tissue touching them;
* ``lesion left``: filled voxels brighter than the brightest ring voxel (a copy of the lesion).

Usage:
    python bench/bench_inpainting.py                       # 2 mm and 1 mm, radii 10 20 30 mm, all methods
    python bench/bench_inpainting.py --resolutions 2 --radii 20 --repeats 1

Results: a Markdown table on stdout and in ``bench/results/inpainting.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
from scipy import ndimage
from voxcause.counterfactual.inpaint import remove_region
from voxcause.counterfactual.regions import foreground_of

METHODS = [("harmonic", {}), ("harmonic", {"noise": False}), ("navier-stokes", {}), ("telea", {}),
           ("constant", {})]
CENTRE_MM = (20.0, 35.0, 25.0)  # MNI (x, y, z): right frontal white matter


def template(resolution: int) -> tuple[np.ndarray, tuple[float, ...], np.ndarray]:
    """(image (1, z, y, x) float32, spacing (z, y, x), affine) of the MNI152 template."""
    from nilearn.datasets import load_mni152_template

    image = load_mni152_template(resolution=resolution)
    array = np.asarray(image.get_fdata(), dtype=np.float32).transpose(2, 1, 0)[None]
    spacing = tuple(float(s) for s in image.header.get_zooms()[::-1])
    return array, spacing, image.affine


def lesion_mask(shape: tuple[int, ...], affine: np.ndarray, radius_mm: float) -> np.ndarray:
    """A sphere of ``radius_mm`` around `CENTRE_MM`, on the (z, y, x) array grid."""
    centre_ijk = np.linalg.solve(affine, np.array([*CENTRE_MM, 1.0]))[:3]  # (i, j, k) = (x, y, z) index
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    distance2 = (((x - centre_ijk[0]) * zooms[0]) ** 2 + ((y - centre_ijk[1]) * zooms[1]) ** 2
                 + ((z - centre_ijk[2]) * zooms[2]) ** 2)
    return distance2 <= radius_mm**2


def measure(truth: np.ndarray, lesioned: np.ndarray, mask: np.ndarray, spacing, method: str, options: dict,
            repeats: int) -> dict:
    times = []
    for repeat in range(repeats):
        start = time.perf_counter()
        result = remove_region(lesioned, mask, spacing=spacing, method=method, seed=repeat, **options)
        times.append(time.perf_counter() - start)
    filled = result.filled
    foreground = foreground_of(truth)
    ring = (ndimage.distance_transform_edt(~filled, sampling=spacing) <= 4.0) & ~filled & foreground
    sd = float(truth[0][ring].std())
    error = result.array[0][filled] - truth[0][filled]
    inner = filled & ndimage.binary_dilation(~filled & foreground)
    outer = ~filled & foreground & ndimage.binary_dilation(filled)
    step = float(result.array[0][inner].mean() - result.array[0][outer].mean())
    return {"seconds": float(np.median(times)), "filled": int(filled.sum()),
            "rmse": float(np.sqrt(np.mean(error**2))) / sd, "bias": float(error.mean()) / sd, "step": step / sd,
            "left": int((result.array[0][filled] > lesioned[0][ring].max() + 1e-6).sum()),
            "solver": result.details.get("solver", "-")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", default="2,1", help="MNI template resolutions in mm (default 2,1)")
    parser.add_argument("--radii", default="10,20,30", help="lesion radii in mm (default 10,20,30)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell; the median is reported")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "inpainting.md"))
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [f"Inpainting on the MNI152 template ({platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} CPUs, load average {load:.1f} at the start; median of {args.repeats})", "",
             "| grid | lesion radius | filled voxels | method | solver | seconds | rmse/sd | bias/sd | step/sd | "
             "lesion left |", "|---|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for resolution in (int(r) for r in args.resolutions.split(",")):
        truth, spacing, affine = template(resolution)
        rng = np.random.default_rng(0)
        white = float(np.percentile(truth[0][truth[0] > 0.1], 90))
        for radius in (float(r) for r in args.radii.split(",")):
            mask = lesion_mask(truth.shape[1:], affine, radius)
            lesioned = truth.copy()
            lesioned[0][mask] = 2.5 * white + rng.normal(0, 0.05 * white, int(mask.sum()))
            for method, options in METHODS:
                row = measure(truth, lesioned, mask, spacing, method, options, args.repeats)
                name = method + ("" if options.get("noise", True) else " (no noise)")
                line = (f"| {'x'.join(map(str, truth.shape[:0:-1]))} @ {resolution} mm | {radius:.0f} mm | "
                        f"{row['filled']} | {name} | {row['solver']} | {row['seconds']:.3f} | {row['rmse']:.2f} | "
                        f"{row['bias']:+.2f} | {row['step']:+.2f} | {row['left']} |")
                print(line, flush=True)
                lines.append(line)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
