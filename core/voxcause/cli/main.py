"""The ``voxcause`` command: subcommands, and one error line with exit code 2 for bad input."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import importlib
import os
import sys

from ..errors import InputError

# Each command lives in its own module exposing add_parser(subparsers) and run(args).
COMMANDS = ["explain", "sanity", "counterfactual", "benchmark", "findings", "report", "demo", "batch", "methods"]


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(prog="voxcause", description="Causal explanations for medical-imaging models.")
    parser.add_argument("--version", action="version", version=f"voxcause {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"voxcause.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"voxcause.cli.{name}":
                continue
            raise
        module.add_parser(subparsers).set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    _printable_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    json_mode = getattr(args, "progress", None) == "json"
    try:
        return int(args.handler(args) or 0)
    except InputError as error:
        _fail(str(error), json_mode, code=error.code)
        return 2
    except KeyboardInterrupt:
        _fail("interrupted", json_mode)
        return 130
    except Exception as error:  # an internal failure: one line, the traceback only on request
        if os.environ.get("VOXCAUSE_DEBUG"):
            raise
        _fail(f"internal error: {type(error).__name__}: {error} (set VOXCAUSE_DEBUG=1 for the traceback)", json_mode)
        return 1


def _printable_streams() -> None:
    """Let stdout and stderr print any text: on a stream whose encoding is not UTF (an ASCII locale, ``LC_ALL=C``
    without Python's UTF-8 mode) a character it lacks (Δ, —, ≥) is written as a backslash escape instead of
    raising UnicodeEncodeError after the work is done."""
    for stream in (sys.stdout, sys.stderr):
        try:
            encoding = codecs.lookup(getattr(stream, "encoding", None) or "ascii").name
        except LookupError:
            encoding = "unknown"
        if encoding.startswith("utf") or getattr(stream, "errors", None) == "backslashreplace":
            continue
        with contextlib.suppress(AttributeError, ValueError, OSError):  # not a TextIOWrapper: left as it is
            stream.reconfigure(errors="backslashreplace")


def _fail(message: str, json_mode: bool, *, code: str | None = None) -> None:
    """One error line: plain on stderr, or a JSON ``error`` event with the `voxcause.errors.ErrorCode` of bad
    input (``code``), which the Slicer panel maps to its own words."""
    line = " ".join(message.split())
    if json_mode:
        from .progress import emit

        emit({"event": "error", "message": line, **({"code": str(code)} if code else {})})
    else:
        print(f"voxcause: error: {line}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
