"""``voxcause counterfactual``: would the model still decide the same without the region? with only it?

One image::

    voxcause counterfactual case.nii.gz --model card.json --mask tumour.nii.gz --out out/
    voxcause counterfactual case.nii.gz --model card.json --mask-from-explanation rex   # is the sufficient
                                                                                        # explanation necessary?
A dataset::

    voxcause counterfactual --manifest cohort.csv --model card.json --out out/

writes removed.nii.gz, only.nii.gz, map.nii.gz, explanation.seg.nrrd, summary.json and overview.png per image, and
cases.csv, per_class.csv, correctness.csv, dataset_summary.json, distributions.png/.pdf for a manifest.
"""

from __future__ import annotations

import argparse
import sys

from ..counterfactual.region_only import BASELINES
from ..errors import InputError
from ..explainers import DEFAULT_METHOD
from .common import add_model_options, add_output_options, check_writable, model_options

REMOVALS = ("harmonic", "navier-stokes", "telea", "context", "constant")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``counterfactual`` command on ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    parser = subparsers.add_parser(
        "counterfactual",
        help="score the image with a region removed (inpainted) and with only the region kept (ΔDrop, ΔFocus)",
        description="Remove a region by 3D inpainting and keep only the region; report P_orig, P_remove, P_only, "
                    "ΔDrop = P_orig - P_remove and ΔFocus = P_only, for one image or a manifest of cases. Writes "
                    "removed.nii.gz, only.nii.gz, map.nii.gz, explanation.seg.nrrd, summary.json and overview.png.",
    )
    parser.add_argument("image", nargs="*", help="image file(s); several files = one channel each (T1 T1c T2 FLAIR)")
    add_model_options(
        parser,
        required=False,
        model_help="TorchScript/.pt2/.onnx file, MONAI bundle folder or model card (dataset mode: for rows "
        "without a 'model' cell)",
        batch_size=16,
        batch_size_help="images per forward call (default 16)",
    )
    region = parser.add_argument_group("region (exactly one source)")
    source = region.add_mutually_exclusive_group()
    source.add_argument("--mask", help="region mask file (any grid overlapping the image; resampled)")
    source.add_argument("--mask-from-segmenter", metavar="MODEL", help="take the region from this segmenter")
    source.add_argument("--mask-from-explanation", metavar="METHOD", nargs="?", const=DEFAULT_METHOD,
                        help=f"take the region from the sufficient mask of this explanation (default {DEFAULT_METHOD})")
    region.add_argument("--mask-labels", help="label values forming the region, e.g. 1,4 (default: all non-zero)")
    region.add_argument("--segmenter-label", help="class of --mask-from-segmenter (default its largest)")
    parser.add_argument("--target", help="label name or index (default: the predicted class)")
    parser.add_argument("--region", help="segmenters: fixed region whose mean target probability is scored")
    removal = parser.add_argument_group("removal and region-only images")
    removal.add_argument("--removal", choices=REMOVALS, default="harmonic", help="how the region is removed")
    removal.add_argument("--context", help="healthy/context volume on the image grid (--removal context)")
    removal.add_argument("--dilate-mm", type=float, default=2.0, help="grow the region before removal (default 2)")
    removal.add_argument("--ring-mm", type=float, default=4.0, help="width of the matched tissue ring (default 4)")
    removal.add_argument("--no-noise", action="store_true", help="harmonic infill without matched texture noise")
    removal.add_argument("--slice-axis", type=int, default=0, help="slice axis of navier-stokes/telea (default 0=z)")
    removal.add_argument("--only-baseline", choices=BASELINES, default="mean",
                         help="what replaces everything outside the region in the region-only image (default mean)")
    removal.add_argument("--only-value", type=float, default=0.0, help="the constant of --only-baseline constant")
    removal.add_argument("--blur-mm", type=float, default=8.0, help="sigma of --only-baseline blur (default 8)")
    removal.add_argument("--normalization", choices=("frozen", "refit"), default="frozen",
                         help="intensity statistics for the counterfactuals: the original's (default) or their own")
    dataset = parser.add_argument_group("dataset mode")
    dataset.add_argument("--manifest", help="CSV (image, mask, label, patient[, id, target, model])")
    dataset.add_argument("--label", help="true class for rows without a label cell")
    dataset.add_argument("--no-case-outputs", action="store_true", help="write only the tables and the plot")
    dataset.add_argument("--target-from", choices=("predicted", "label"), default="predicted",
                         help="target of rows without one: the predicted class (default) or the true label")
    parser.add_argument("--seed", type=int, default=0, help="seed of the infill noise (and of --mask-from-explanation)")
    add_output_options(parser, "voxcause-counterfactual")
    return parser


def _ints(text: str | None, what: str) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"{what} {text!r} is not a comma-separated list of integers — e.g. 1,4") from None


def run(args: argparse.Namespace) -> int:
    """Run the command; bad input raises `InputError` (the main CLI prints one line and exits 2)."""
    from ..models import load_model
    from .progress import emit, progress_reporter

    options = {
        "removal": args.removal, "dilate_mm": args.dilate_mm, "ring_mm": args.ring_mm,
        "only_baseline": args.only_baseline, "only_value": args.only_value, "blur_mm": args.blur_mm,
        "normalization": args.normalization, "seed": args.seed, "noise": not args.no_noise, "axis": args.slice_axis,
    }
    if args.context:
        options["context"] = args.context
    if args.mask_labels:
        options["mask_labels"] = _ints(args.mask_labels, "--mask-labels")
    if args.manifest and args.image:
        raise InputError("give either IMAGE or --manifest, not both — the manifest lists the images")
    if not args.manifest:
        if not args.image:
            raise InputError("no image — pass IMAGE (one file per channel) or --manifest CSV")
        if not args.model:
            raise InputError("no model — pass --model (a model file, bundle folder or model card)")
        if not (args.mask or args.mask_from_segmenter or args.mask_from_explanation):
            raise InputError("no region — pass --mask FILE, --mask-from-segmenter MODEL or --mask-from-explanation")
    out = check_writable(args.out)
    overrides = model_options(args)
    segmenter = None
    if args.mask_from_segmenter:
        segmenter = load_model(args.mask_from_segmenter, device=args.device)
        options["segmenter_label"] = args.segmenter_label
    with progress_reporter(args.progress, "counterfactual") as progress:
        if args.manifest:
            from ..counterfactual.dataset import run_manifest

            model = args.model
            if model and set(overrides) - {"batch_size"}:
                model = load_model(model, device=args.device, **overrides)
            result = run_manifest(args.manifest, out_dir=out, model=model, target=args.target, mask=args.mask,
                                  label=args.label, segmenter=segmenter, explanation_method=args.mask_from_explanation,
                                  save_cases=not args.no_case_outputs, target_from=args.target_from,
                                  device=args.device, progress=progress,
                                  **options)
        else:
            from ..counterfactual.case import counterfactual

            image = args.image if len(args.image) > 1 else args.image[0]
            result = counterfactual(image, model=args.model, mask=args.mask, segmenter=segmenter,
                                    explanation_method=args.mask_from_explanation, target=args.target,
                                    region=args.region, device=args.device, model_options=overrides,
                                    progress=progress, **options)
            progress("writing results", 0.99)
            result.save(out)
    if args.manifest:
        failed = len(result.failures)
        if args.progress != "json":
            print(f"{len(result.rows) - failed}/{len(result.rows)} cases done ({failed} failed) -> {out}")
            for failure in result.failures:  # (in JSON mode stderr carries only events; the tables list them)
                print(f"  failed: {failure['id']} (row {failure['row']}): {failure['error']}", file=sys.stderr)
    elif args.progress != "json":
        s = result.scores
        print(f"'{s.target['label']}': P_orig {s.p_orig:.3f}  P_remove {s.p_remove:.3f}  P_only {s.p_only:.3f}  "
              f"ΔDrop {s.delta_drop:+.3f}  ΔFocus {s.delta_focus:.3f}  classes {s.predicted['orig']['label']} / "
              f"{s.predicted['remove']['label']} / {s.predicted['only']['label']} -> {out}")
    if args.progress == "json":
        emit({"event": "done", "out": str(out)})
    return 0
