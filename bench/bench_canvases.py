"""Which canvas removes HD-BET's evidence? Each candidate scored on the full grid and on the search's crop.

    python bench/bench_canvases.py --threads 2                       # fold 0, cortex cube, every candidate
    python bench/bench_canvases.py --regions cortex edge --canvases shuffle scramble

A canvas can serve occlusion only when the fully occluded image loses the decision and the region shown with
enough context restores it. For each candidate this scores, with fold 0 of HD-BET on the Colin27 head
(`bench_real.py`'s image, model and 20 mm cubes): the fully occluded image on the full grid and on the first crop
the run tries (`crop.FIRST_MARGIN` around the cube: 48^3; the run grows it where its score disagrees, as for
``edge``), and the region plus a shell of 10 / 20 / 40 mm shown on the full grid. One full-grid pass
each (~10-20 s on this CPU), four per candidate; JSON lines go to ``bench/results/canvases.jsonl``.

Candidates (``occluded``: the voxels occlusion replaces, the body grown by one voxel — air stays air):

* ``constant``, ``shuffle``, ``scramble``: `voxcause.removal.canvas`'s, on ``occluded`` (`occludable_region`), as
  the causal engine builds them (``scramble``: the body filled from the whole image's voxels in a random order);
* ``scramble_grid``: every voxel of the grid, air included, replaced by the scrambled grid: no outline left;
* ``dilated_shuffle``: the body grown by 10 mm, its voxels shuffled within it (a blurred outline);
* ``smooth_body``, ``smooth_grid``: noise with the histogram of the body's (or the grid's) own voxels, in blobs
  of sigma 2 voxels (3 mm, about the partition floor of a 48^3 crop): shuffled, blurred, mapped back onto the
  sorted values.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from scipy import ndimage
from voxcause.removal import canvas

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_real import TEMPLATES, regions  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHELLS_MM = (10.0, 20.0, 40.0)
CANVASES = ("constant", "shuffle", "scramble", "scramble_grid", "dilated_shuffle", "smooth_body", "smooth_grid")


def candidate(image: torch.Tensor, kind: str, seed: int = 0) -> torch.Tensor:
    """The fully occluded (1, 1, *S) ``image`` on canvas ``kind`` (see the module docstring)."""
    from voxcause.causal.auto import occludable_region
    from voxcause.ops import dilate

    foreground, _, occluded = occludable_region(image)
    if kind in ("constant", "shuffle", "scramble"):
        return canvas(image, kind, where=occluded, foreground=foreground, seed=seed)
    if kind == "scramble_grid":
        return canvas(image, "scramble", seed=seed)
    if kind == "dilated_shuffle":
        grown = dilate(foreground, round(10 / 1.5))
        return canvas(image, "shuffle", foreground=grown, seed=seed)
    if kind in ("smooth_body", "smooth_grid"):
        within = occluded if kind == "smooth_body" else torch.ones_like(foreground)
        return torch.where(within, _smooth_noise(image, within, seed), image)
    raise ValueError(kind)


def _smooth_noise(image: torch.Tensor, within: torch.Tensor, seed: int, sigma: float = 2.0) -> torch.Tensor:
    """``within``'s voxels shuffled, blurred (sigma voxels, inside ``within`` only) and mapped back onto their own
    sorted values: blobs of the image's own histogram, no structure."""
    from voxcause.ops import gaussian_blur

    noise = canvas(image, "shuffle", foreground=within, seed=seed)
    weight = within.to(image.dtype)[None, None]
    blurred = gaussian_blur(noise * weight, sigma) / gaussian_blur(weight, sigma).clamp(min=1e-6)
    voxels = within.reshape(-1).nonzero().flatten()
    ranks = blurred.reshape(-1)[voxels].argsort()
    out = image.reshape(-1).clone()
    out[voxels[ranks]] = image.reshape(-1)[voxels].sort().values
    return out.reshape(image.shape)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", nargs="+", default=["cortex"], choices=["cortex", "deep", "edge"])
    parser.add_argument("--canvases", nargs="+", default=list(CANVASES), choices=CANVASES)
    parser.add_argument("--shells", nargs="*", type=float, default=list(SHELLS_MM))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from voxcause.certificate import measured
    from voxcause.crop import FIRST_MARGIN, ContextCrop, _grown
    from voxcause.io import read_image
    from voxcause.models.hdbet import SPACING, load_hdbet
    from voxcause.targets import RegionTarget

    volume = read_image(TEMPLATES / "ch2.nii.gz")
    model = load_hdbet(0)
    image = model.prepare(volume)
    with torch.no_grad():
        probs = model.predict(image)
    mask = model.to_image_space(probs[0].argmax(0).float(), volume, order=0) > 0.5
    cubes = regions(mask, volume.spacing)
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.regions:
        region = model.mask_to_model_space(cubes[name])
        target = RegionTarget(1, "brain", region)
        target.reference_score = float(target.score(probs)[0])
        threshold = target.pass_fraction * target.reference_score
        crop = ContextCrop(_grown(target.box, FIRST_MARGIN, tuple(image.shape[2:])), 0.0, 0.0, tuple(image.shape[2:]))
        distance = ndimage.distance_transform_edt(~region.cpu().numpy(), sampling=SPACING)
        for kind in args.canvases:
            started = time.perf_counter()
            full = candidate(image, kind, args.seed)
            row = {"region": name, "canvas": kind, "image": round(target.reference_score, 3),
                   "threshold": round(threshold, 3),
                   "occluded_full": round(measured(model, target, full)[0][0], 3),
                   "occluded_crop": round(measured(model, crop.target(target), candidate(
                       crop.cut(image), kind, args.seed))[0][0], 3)}
            for shell in args.shells:
                shown = torch.from_numpy(distance <= shell).to(image.device)
                row[f"shown_{shell:g}mm"] = round(measured(model, target, torch.where(shown, image, full))[0][0], 3)
            row["seconds"] = round(time.perf_counter() - started, 1)
            row["load"] = round(os.getloadavg()[0], 1)
            print(json.dumps(row), flush=True)
            rows.append(row)
    with (RESULTS / "canvases.jsonl").open("a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
