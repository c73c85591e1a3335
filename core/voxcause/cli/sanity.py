"""``voxcause sanity``: does the map depend on the model? (model-parameter randomisation, target fixed)

    voxcause sanity case.nii.gz --model card.json --method rex --out sanity/ [--efficient]

Writes the model's own explanation folder (as ``explain``) whose summary.json carries a ``sanity`` block, and
sanity.json with the same block; prints one line per randomisation step and the verdict
(`voxcause.evaluate.sanity`).
"""

from __future__ import annotations

import argparse
import json

from ..errors import InputError
from ..explainers import DEFAULT_METHOD
from .common import (
    add_method_options,
    add_model_options,
    add_output_options,
    add_threads_option,
    check_threads,
    check_writable,
    method_options,
    model_options,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..evaluate.sanity import DEFAULT_STEPS

    parser = subparsers.add_parser(
        "sanity",
        help="check that a method's map depends on the model: compare it with maps of randomised models",
        description="Explain IMAGE with the model and with copies whose top layers (a cascade; with --efficient "
        "only all layers) are randomised, the target held fixed; report rank correlation, SSIM and the rise in "
        "the map's complexity, and a verdict (pass: rank correlation <= 0.3 with the fully random model).",
    )
    parser.add_argument("image", nargs="+", help="image file(s) (one per channel) or a DICOM folder")
    add_model_options(parser)
    add_threads_option(parser, "CPU threads of torch, SimpleITK and onnxruntime (default: every core)")
    parser.add_argument("--method", default=DEFAULT_METHOD, help=f"explanation method (default {DEFAULT_METHOD})")
    parser.add_argument("--target", help="label name or index (default: the predicted class)")
    parser.add_argument("--region", help="segmenters: the region explained (default: the predicted one)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the method and of the random parameters")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"cascade steps from the top layer down to all layers (default {DEFAULT_STEPS})")
    parser.add_argument("--efficient", action="store_true",
                        help="only the fully randomised model (EfficientMPRT-style: two maps' cost)")
    add_method_options(parser)
    add_output_options(parser, "voxcause-sanity")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..evaluate.sanity import sanity_check
    from ..io.atomic import atomic_path
    from ..models import set_threads
    from .progress import progress_reporter

    set_threads(check_threads(args.threads))
    out = check_writable(args.out)
    options, context = method_options(args)
    if context is not None:
        raise InputError(f"--occlusion {context}: the sanity check takes no healthy volume — use --occlusion auto, "
                         "constant, mean, min or blur")
    image = args.image if len(args.image) > 1 else args.image[0]
    with progress_reporter(args.progress, "sanity check") as progress:
        result, report = sanity_check(
            image, model=args.model, method=args.method, target=args.target, region=args.region, seed=args.seed,
            steps=args.steps, efficient=args.efficient, device=args.device, progress=progress,
            model_options=model_options(args), **options,
        )
        result.save(out)
    with atomic_path(out / "sanity.json") as temp:
        temp.write_text(json.dumps(report, indent=2), encoding="utf-8")
    if args.progress != "json":
        for row in report["steps"]:
            print(f"{row['randomized']:>4.0%} of layers random ({row['layers']}/{report['layers']}): rank correlation "
                  f"{row['rank_correlation']:+.2f}, SSIM {row['ssim']:.2f}, complexity {row['complexity']:.2f}")
        rise = report["complexity_rise"]
        print(f"sanity {report['verdict'].upper()}: {report['reason']}; complexity rise "
              f"{'n/a' if rise is None else f'{rise:+.2f}'}, {report['maps']} maps, {report['seconds']:.1f} s -> {out}")
    return 0
