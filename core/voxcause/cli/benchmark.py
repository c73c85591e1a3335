"""``voxcause benchmark``: how faithful, robust and costly is each explanation method on these cases?

    voxcause benchmark cases.csv --model card.json --methods rex,gradcam,gradcampp,scorecam,occlusion,dea \\
        --out bench/

The manifest lists ``image`` (and optionally ``id``, ``target``, ``mask``); ``mask`` is the reference region
for the localisation numbers (default: the target region of a segmenter). Writes results.csv, summary.csv,
summary.md, verdict.md, curves_<baseline>.png and benchmark.json into ``--out`` (see
``voxcause.evaluate.report``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from .common import add_model_options, add_progress_option, model_options, parse_method_options

DEFAULT_METHODS = "gradcam,gradcampp,scorecam,occlusion,dea,rex"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``benchmark`` command on ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    parser = subparsers.add_parser(
        "benchmark",
        help="compare explanation methods: deletion/insertion AUCs, localisation, robustness, cost",
        description="Run several explanation methods on the cases of a manifest and measure faithfulness "
        "(deletion/insertion curves with constant, blur and inpainting baselines against a random ranking, "
        "faithfulness correlation), localisation (pointing game, mass inside, rank accuracy, leakage), "
        "robustness (noise, intensity scale, gamma, 1-2 voxel shifts) and cost (time, passes, memory).",
    )
    parser.add_argument("manifest", help="CSV with a header: image (required), id, target, mask, model")
    parser.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated (default {DEFAULT_METHODS})")
    parser.add_argument("--target", help="label name or index for rows without one (default: predicted)")
    parser.add_argument("--mask", help="reference mask for rows without one")
    parser.add_argument("--baselines", default="constant,blur,inpaint", help="curve baselines (default all three)")
    parser.add_argument("--steps", type=int, default=20, help="points per curve minus one (default 20)")
    parser.add_argument("--random-repeats", type=int, default=3, help="random rankings averaged (default 3)")
    parser.add_argument(
        "--perturbations",
        default="noise,scale,gamma,shift1,shift2",
        help="robustness perturbations, or 'none' (each costs one more explanation)",
    )
    parser.add_argument("--faithfulness-runs", type=int, default=32, help="random subsets (0 to skip)")
    parser.add_argument("--sanity", action="store_true", help="also the model-randomisation check per method: "
                        "|rank correlation| with the map of a fully randomised model (one more map each)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="METHOD.KEY=VALUE",
        help="a method option, e.g. occlusion.cell=8 or rex.iterations=10 (repeatable)",
    )
    parser.add_argument("--out", default="voxcause-benchmark", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of random rankings, noise and stochastic methods")
    add_model_options(
        parser, required=False, model_help="model file, MONAI bundle folder or model card (unless in the manifest)"
    )
    add_progress_option(parser)
    parser.set_defaults(run=run)
    return parser


def load_cases(args: argparse.Namespace):
    """Read the manifest into (model, [evaluate.Case]) on the model grid; one model for all rows."""
    from ..batch.manifest import read_manifest
    from ..evaluate import Case
    from ..io import read_image
    from ..models import load_model
    from ..targets import resolve_target

    rows = read_manifest(args.manifest, model=args.model, target=args.target, mask=args.mask)
    models = {row.model for row in rows}
    if len(models) != 1:
        raise InputError("the benchmark compares methods on one model: give --model, or one model for all rows")
    model = load_model(models.pop(), device=args.device, **model_options(args))
    cases = []
    for row in rows:
        volume = read_image(list(row.image) if len(row.image) > 1 else row.image[0])
        inputs = model.prepare(volume)
        mask = None
        if row.mask:
            mask = model.mask_to_model_space(read_image(row.mask).array[0] > 0)
            if not bool(mask.any()):
                raise InputError(f"the mask of case {row.id!r} is empty on the model grid: check {row.mask}")
        target = resolve_target(model, inputs, row.target)
        cases.append(Case(row.id, inputs, target, mask))
    return model, cases


def run(args: argparse.Namespace) -> int:
    """Run the command; bad input raises `InputError` (the main CLI prints one line and exits 2)."""
    from ..evaluate import run_benchmark, write_report
    from ..evaluate.report import markdown_table, summarise
    from .progress import emit, progress_reporter

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise InputError("--methods is empty: pass e.g. --methods gradcam,occlusion")
    baselines = tuple(b.strip() for b in args.baselines.split(",") if b.strip())
    perturbations = (
        ()
        if args.perturbations.strip() in ("", "none")
        else tuple(p.strip() for p in args.perturbations.split(",") if p.strip())
    )
    from ..evaluate.robustness import PERTURBATIONS

    bad = [p for p in perturbations if p not in PERTURBATIONS]
    if bad:
        raise InputError(f"unknown perturbation(s) {', '.join(bad)}: use {', '.join(PERTURBATIONS)} or none")
    if args.steps < 1:
        raise InputError("--steps must be at least 1 (e.g. 20)")
    model, cases = load_cases(args)
    with progress_reporter(args.progress, "benchmark") as progress:
        result = run_benchmark(
            model,
            cases,
            methods,
            options=parse_method_options(args.option),
            baselines=baselines,
            steps=args.steps,
            random_repeats=args.random_repeats,
            perturbations=perturbations,
            faithfulness_runs=args.faithfulness_runs,
            seed=args.seed,
            progress=progress,
            sanity=args.sanity,
        )
        write_report(result, args.out)
    print(markdown_table(summarise(result.rows)), end="")
    print(f"-> {Path(args.out)}")
    if args.progress == "json":
        emit({"event": "done", "out": str(Path(args.out))})
    return 0
