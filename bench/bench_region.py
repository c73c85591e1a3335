"""Work only where the target can depend: a region of a normalising U-Net, whole-image vs sliding-window card.

    python bench/bench_region.py                    # both cards, seeds 0 1 2
    python bench/bench_region.py --seeds 0          # the README's row

The network is the test suite's trained InstanceNorm U-Net (`voxcause.testing`, MONAI ``UNet`` with
``norm="instance"``, trained by ``scripts/train_instance_unet.py``) on a 64³ image of noise with one bright
sphere (radius 4, 257 voxels: the region and its cause) and two same-brightness cubes it ignores — the cases of
``tests/causal/test_region_work.py``: the sphere near the middle for the whole-image card, in a corner (inside
one window of each axis) for the sliding-window card. Two cards over the same weights, each at voxcause's defaults
(``explain(image, model=card, region=sphere, seed=...)``):

* ``whole``: one pass over the whole image; the search runs on a context crop around the region whose region
  score agrees with the full image's, the certificate on the full input (`voxcause.crop`);
* ``windowed``: 32³ Gaussian windows, overlap 0.25 (27 windows a full pass); every mutant runs only the windows
  overlapping the region (`voxcause.models`' windowed scoring).

Columns: forward passes, windows run (and what running every window for every mutant would cost), wall seconds
(one torch thread; the machine may be shared: the load average is printed), the searched box, the crop's share
of the grid and agreement, iterations, canvas, certificate, and the share of the sufficient explanation within
two voxels of the sphere. The table also goes to ``bench/results/region.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from voxcause import explain
from voxcause.models import load_model
from voxcause.ops import dilate
from voxcause.testing import WHOLE_CARD, WINDOWED_CARD, region_case, volume_of

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from measure import publish  # noqa: E402

SIZE = 64
WINDOWS = 27  # 32^3 windows at overlap 0.25 on 64^3: starts 0, 24, 32 on each axis
CARDS = {"whole": WHOLE_CARD, "windowed": WINDOWED_CARD}
CENTRES = {"whole": (30, 26, 22), "windowed": (10, 11, 12)}
OUT = Path(__file__).resolve().parent / "results" / "region.md"


def measure(card: str, seed: int) -> dict:
    """One explanation of the sphere at the defaults with ``card``."""
    image, sphere = region_case(CENTRES[card], SIZE)
    model = load_model(CARDS[card])
    started = time.perf_counter()
    result = explain(volume_of(image), model=model, region=sphere, seed=seed, progress=False)
    seconds = time.perf_counter() - started
    summary = result.summary()
    box = result.stats["searched_box"]
    sufficient = result.masks["sufficient"]
    grown = dilate(torch.from_numpy(sphere), 2).numpy()
    crop = summary.get("crop") or {}
    return {
        "card": card, "seed": seed, "passes": int(result.stats["forward_passes"]),
        "windows": int(result.stats.get("window_passes", 0)), "seconds": seconds,
        "box": "×".join(str(hi - lo) for lo, hi in zip(box["lo"], box["hi"], strict=True)),
        "crop_share": crop.get("share_of_grid"), "agreement": crop.get("agreement"),
        "iterations": summary["stats"].get("iterations", {}).get("run"),
        "canvas": result.stats.get("occlusion_used", "?"), "verdict": result.certificate["verdict"],
        "near": float((sufficient & grown).sum()) / max(int(sufficient.sum()), 1),
    }


def row(run: dict) -> str:
    windows = f"{run['windows']:,} (every window: {run['passes'] * WINDOWS:,})" if run["windows"] else "—"
    crop = (f"{run['crop_share']:.0%} of the grid, agreement {run['agreement']:.3f}"
            if run["crop_share"] is not None else "—")
    return (f"| {run['card']} | {run['seed']} | {run['passes']:,} | {windows} | {run['seconds']:.1f} | {run['box']} | "
            f"{crop} | {run['iterations']} | {run['canvas']} | {run['verdict']} | {run['near']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", nargs="+", default=list(CARDS), choices=list(CARDS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = []
    for card in args.cards:
        for seed in args.seeds:
            runs.append(measure(card, seed))
            print(f"{card} seed {seed}: {runs[-1]['passes']} passes, {runs[-1]['verdict']}", flush=True)
    lines = ["| card | seed | passes | windows run | seconds | searched box | crop | iterations | canvas | "
             "certificate (full input) | sufficient within 2 voxels of the sphere |",
             "|---|---|---|---|---|---|---|---|---|---|---|", *map(row, runs),
             f"\nload average {' / '.join(f'{value:.1f}' for value in os.getloadavg())}, one torch thread"]
    publish("\n".join(lines), OUT)


if __name__ == "__main__":
    main()
