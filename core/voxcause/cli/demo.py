"""``voxcause demo``: the whole product on a bundled case, no data or weights to fetch."""

from __future__ import annotations

import argparse

from .common import DEVICE_HELP, add_progress_option, check_writable


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole product on a bundled synthetic glioma case",
        description="Generates a realistic synthetic brain-tumour MRI, explains the sample "
        "classifier and segmenter, and writes pictures, JSON and Slicer files.",
    )
    parser.add_argument("--out", default="voxcause-demo", help="output folder (default voxcause-demo)")
    parser.add_argument(
        "--kind",
        default="glioma",
        choices=["glioma", "meningioma", "pituitary"],
        help="tumour type of the sample case (default glioma)",
    )
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--seed", type=int, default=0)
    add_progress_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from .progress import emit, progress_reporter

    out = check_writable(args.out)
    with progress_reporter(args.progress, "demo") as progress:
        summary = run_demo(out, kind=args.kind, device=args.device, progress=progress, seed=args.seed)
    if args.progress == "json":
        emit({"event": "done", "out": str(out)})
        return 0
    print(f"voxcause demo ({summary['seconds']:.0f} s) -> {out}/")
    for name, stage in summary["stages"].items():
        if isinstance(stage, dict) and "delta_drop" in stage:
            print(f"  {name:14s} ΔDrop {stage['delta_drop']:.3f}, ΔFocus {stage['delta_focus']:.3f}  "
                  f"-> {out / name / 'overview.png'}")
        elif isinstance(stage, dict):
            print(
                f"  {name:14s} '{stage['target']}' score {stage['score']:.3f}, {stage['forward_passes']} passes, "
                f"{stage['seconds']} s, certificate {str(stage.get('certificate')).upper()}  "
                f"-> {out / name / 'overview.png'}"
            )
        else:
            print(f"  {name:14s} -> {stage}")
    print(
        f"open {out / 'classifier' / 'overview.png'} first; load {out / 'classifier' / 'explanation.seg.nrrd'} in Slicer"
    )
    return 0
