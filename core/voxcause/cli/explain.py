"""``voxcause explain``: one image, one model, one explanation folder."""

from __future__ import annotations

import argparse

from ..explainers import DEFAULT_METHOD, METHODS
from .common import (
    add_method_options,
    add_model_options,
    add_output_options,
    add_speed_options,
    add_threads_option,
    check_threads,
    check_writable,
    method_options,
    model_options,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "explain",
        help="explain a classifier's or segmenter's decision on one image",
        description="Explain why a model decides what it does on IMAGE. Writes map.nii.gz, explanation.seg.nrrd, "
        "summary.json and overview.png into --out, in the image's geometry.",
    )
    parser.add_argument("image", nargs="+", help="image file(s) (one per channel, in the card's channel order) or "
                        "a DICOM folder")
    parser.add_argument("--series", metavar="UID", help="the SeriesInstanceUID to read from a DICOM folder that "
                        "holds several series (refused without it)")
    parser.add_argument("--max-memory", metavar="SIZE", help="refuse a run whose estimated peak memory exceeds SIZE, "
                        "e.g. 8G (default: refuse only what the memory available cannot hold)")
    parser.add_argument("--channel-order-checked", action="store_true", help="go on although a channel file's "
                        "name names another channel of the card (refused by default)")
    add_model_options(parser)
    add_speed_options(parser)
    add_threads_option(parser, "CPU threads of torch and SimpleITK (default: every core)")
    parser.add_argument("--target", help="label name or index (default: the predicted class); 'all' (segmenters, "
                        "method rex): every label the model predicts — for a one-label model every connected "
                        "component of it — from one shared search, each with its own map and certificate in a "
                        "sub-folder of --out, listed in --out/summary.json")
    parser.add_argument("--grayscale", action="store_true", help="read a colour picture (JPEG/PNG/TIFF/BMP) as grey "
                        "luminance (default: as stored; a 1-channel model's card converts it anyway)")
    others = "|".join(name for name in METHODS if name != DEFAULT_METHOD)
    parser.add_argument("--method", default=DEFAULT_METHOD, help=f"{DEFAULT_METHOD} (default), or {others}")
    parser.add_argument("--region", help="segmenters: mask whose mean target probability is explained")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--pass-fraction",
        type=float,
        default=0.5,
        help="segmenters: the decision holds while the region score keeps this share (default 0.5)",
    )
    parser.add_argument("--flips", action="store_true", help="segmenters: uncertainty.nii.gz also spreads over "
                        "test-time flips (mirrored copies) of each fold (default: across an ensemble's folds only)")
    add_method_options(parser)
    parser.add_argument("--store", metavar="URL", help="store the DICOM SEG and Parametric Maps in this DICOMweb "
                        "server (STOW-RS; its root, e.g. http://pacs:8042/dicom-web), in the source's study; "
                        "implies --dicom")
    parser.add_argument("--dicom", action="store_true", help="also write explanation.seg.dcm (DICOM SEG) and "
                        "map.pm.dcm (parametric map) referencing the input series (default: for DICOM input)")
    add_output_options(parser, "voxcause-out")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..api import explain
    from ..errors import InputError
    from ..explanation import Explanations
    from ..models import set_threads
    from ..targets import is_all
    from .progress import emit, progress_reporter

    set_threads(check_threads(args.threads))
    if args.method_layer == "list":
        return list_layers(args)
    if args.store and is_all(args.target):
        raise InputError("--store sends one explanation's DICOM objects, and --target all makes one per label — "
                         "drop --store, or explain one label with --target")
    if args.store:
        from ..io.dicomweb import check_store_url

        check_store_url(args.store)
        args.dicom = True
    if args.dicom:
        from ..io.dicom_out import check_dicom_request

        check_dicom_request(args.image)
    out = check_writable(args.out)
    options, context = method_options(args)
    image = args.image if len(args.image) > 1 else args.image[0]
    if args.series:
        from ..io import read_image

        image = read_image(image, series=args.series)
    if args.grayscale:
        image = grey_picture(image)
    with progress_reporter(args.progress, "explaining") as progress:
        result = explain(
            image,
            model=args.model,
            target=args.target,
            method=args.method,
            region=args.region,
            seed=args.seed,
            device=args.device,
            progress=progress,
            model_options=model_options(args),
            pass_fraction=args.pass_fraction,
            context=context,
            flips=args.flips,
            channel_order_checked=args.channel_order_checked,
            max_memory=args.max_memory,
            **options,
        )
        progress("writing results", 0.99)
        result.save(out, dicom=True if args.dicom else None)
        if isinstance(result, Explanations):
            progress("done", 1.0)
            return _report_all(result, out, args.progress)
        stored = _store(out, args.store) if args.store else []
        progress("done", 1.0)
    certificate = result.certificate or {}
    if args.progress == "json":
        emit({"event": "done", "out": str(out), "certificate": certificate.get("verdict")})
    else:
        from ..outputs import size_text

        mask = result.masks.get("sufficient")
        extra = f", sufficient explanation {size_text(mask, result.volume.spacing)}" if mask is not None and mask.any() \
            else ""
        print(
            f"{result.method}: '{result.target['label']}' score {result.score:.3f}, "
            f"{result.stats['forward_passes']} forward passes, {result.stats['seconds']:.1f} s{extra} -> {out}"
        )
        if certificate:
            print(f"certificate {certificate['verdict'].upper()}: {certificate['reason']}")
        if stored:
            print(f"stored in {args.store}: " + ", ".join(f"{name} (series {uid})" for name, uid in stored))
    return 0


def _report_all(result, out, mode: str) -> int:
    """``--target all``: one line per target (its folder, score and certificate) and the run's cost."""
    from ..explanation import target_name
    from .progress import emit

    verdicts = {folder: item.certificate or {} for folder, item in zip(result.folders(), result, strict=True)}
    if mode == "json":
        emit({"event": "done", "out": str(out), "certificates": {f: c.get("verdict") for f, c in verdicts.items()}})
        return 0
    print(f"{result[0].method}: {len(result)} targets, {result.stats['forward_passes']} forward passes, "
          f"{result.stats['seconds']:.1f} s -> {out}")
    for (folder, certificate), item in zip(verdicts.items(), result, strict=True):
        print(f"  {folder}/: '{target_name(item.target)}' score {item.score:.3f}, certificate "
              f"{str(certificate.get('verdict')).upper()}: {certificate.get('reason')}")
    return 0


def _store(out, url: str) -> list[tuple[str, str]]:
    """``--store``: STOW-RS the DICOM files summary.json names (``*_dicom``) into ``url``; (file, series UID)."""
    import json

    from ..io.dicomweb import store_instances

    volumes = json.loads((out / "summary.json").read_text(encoding="utf-8"))["volumes"]
    files = [out / name for key, name in volumes.items() if key.endswith("_dicom")]
    return list(zip((path.name for path in files), store_instances(url, files), strict=True))


def grey_picture(image):
    """``--grayscale``: the picture (a path or a `Volume`) converted to its luminance, keeping the file's path."""
    from dataclasses import replace

    from ..io import Volume, read_image
    from ..io.photo import to_grayscale

    volume = image if isinstance(image, Volume) else read_image(image)
    return replace(volume, array=to_grayscale(volume.array))


def list_layers(args: argparse.Namespace) -> int:
    """``--layer list``: the CAM layer candidates in execution order, with output shapes; * = automatic."""
    from ..api import _as_volume
    from ..models import load_model
    from ..saliency import layer_candidates

    image = args.image if len(args.image) > 1 else args.image[0]
    model = load_model(args.model, device=args.device, **model_options(args))
    rows = layer_candidates(model, model.prepare(_as_volume(image)))
    for row in rows:
        mark = ("*" if row["automatic"] else " ") + ("~" if row["candidate"] else " ") + ("+" if row["layercam"] else " ")
        print(f"{mark} {row['name']:<60} {' x '.join(str(n) for n in row['shape'])}")
    print("* = chosen by the graph rule (gradcam, seggradcam, dea); ~ = scored by the faithful choice, which keeps "
          "one per image (gradcampp; layer_rule=faithful); + = aggregated by layercam")
    return 0
