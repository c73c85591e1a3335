"""Options and checks shared by the commands that load a model and write an output folder."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from ..errors import InputError


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model (flags override the model card)")
    group.add_argument("--model", required=True, help="TorchScript/.pt2/.onnx file, MONAI bundle folder or model card")
    group.add_argument("--task", choices=["classification", "segmentation"])
    group.add_argument(
        "--labels",
        type=lambda text: [t.strip() for t in text.split(",")],
        help="comma-separated label names, in output-channel order",
    )
    group.add_argument(
        "--spatial-size",
        type=lambda text: [int(t) for t in text.split(",")],
        help="model input grid, e.g. 96,96,96 (default: the image's own grid)",
    )
    group.add_argument("--normalize", help="none | zscore | minmax (default: the card's, else none)")
    group.add_argument("--activation", choices=["softmax", "sigmoid", "none"])
    group.add_argument("--output", help="output head of a model with several outputs (name or index)")
    group.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    group.add_argument("--batch-size", type=int, help="mutants per forward call (default: from volume size and memory)")


def model_options(args: argparse.Namespace) -> dict:
    output = args.output
    if output is not None and str(output).isdigit():
        output = int(output)
    return {
        "task": args.task,
        "labels": args.labels,
        "spatial_size": args.spatial_size,
        "normalize": args.normalize,
        "activation": args.activation,
        "output": output,
        "batch_size": args.batch_size,
        **speed_options(args),
    }


def add_output_options(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument("--out", default=default_out, help=f"output folder (default {default_out})")
    parser.add_argument(
        "--progress",
        choices=["bar", "json", "none"],
        default="bar",
        help="progress display: a bar, JSON lines on stderr (for programs), or none",
    )


def check_writable(out: str | os.PathLike) -> Path:
    """Fail before any work if the output folder cannot be written."""
    folder = Path(out)
    try:
        existing = folder
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise InputError(f"cannot write to {folder}: {existing} is a file — choose another --out")
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".voxcause-probe-"):
            pass
    except OSError as error:
        raise InputError(f"cannot write to {folder} ({error.strerror}) — choose another --out") from None
    return folder


def parse_model_flags(args: argparse.Namespace) -> dict:
    """Model-card overrides from plain string flags (--task, --labels a,b, --spatial-size 96,96,96, --normalize)."""
    options: dict = {}
    if getattr(args, "task", None):
        options["task"] = args.task
    if getattr(args, "labels", None):
        options["labels"] = [part.strip() for part in args.labels.split(",")]
    if getattr(args, "spatial_size", None):
        try:
            options["spatial_size"] = [int(part) for part in args.spatial_size.split(",") if part.strip()]
        except ValueError:
            raise InputError(f"--spatial-size {args.spatial_size!r} is not a list of integers, e.g. 96,96,96") from None
    if getattr(args, "normalize", None):
        options["normalize"] = args.normalize
    options.update(speed_options(args))
    return options


def add_speed_options(parser: argparse.ArgumentParser) -> None:
    """``--precision`` and ``--compile``: how fast the forward pass runs (results agree up to rounding)."""
    group = parser.add_argument_group("speed")
    group.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        help="forward-pass precision: fp32 (default), bf16 (CPU or CUDA autocast), fp16 (CUDA only)",
    )
    group.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile eager networks for scoring (first call compiles; falls back to eager with a warning)",
    )


def speed_options(args: argparse.Namespace) -> dict:
    """The speed flags that were given (absent ones keep `load_model`'s defaults and stay out of batch hashes)."""
    values = {"precision": getattr(args, "precision", None), "compile": getattr(args, "compile", None)}
    return {key: value for key, value in values.items() if value is not None}
