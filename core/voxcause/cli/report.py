"""``voxcause report DIR``: write ``report.md`` and a self-contained ``report.html`` (and ``report.json``).

    voxcause report out/case1                          # deterministic template (default)
    voxcause report out/case1 --llm local              # SmolLM2 rewording, checked against the findings
    voxcause report out/case1 --llm http://127.0.0.1:8080/v1   # any OpenAI-compatible endpoint

Computes findings.json first when it is missing. An LLM that is unreachable, slow, or writes a number or
region the findings do not hold never fails the run: the template text is used and the reason recorded
(report.json, a warning on stderr and a note in the report).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_progress_option


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``report`` command on ``subparsers``."""
    parser = subparsers.add_parser(
        "report",
        help="findings -> report.md and a self-contained report.html (optional checked LLM rewording)",
        description="Write a radiology-style report of an explanation folder: report.md, report.html (pictures "
                    "embedded) and report.json (renderer, LLM outcome, text statistics).",
    )
    parser.add_argument("dir", help="folder written by `voxcause explain` (findings.json is computed if missing)")
    parser.add_argument("--llm", default="none",
                        help="none (default), local (SmolLM2 via llama-cpp-python), or an OpenAI-compatible URL")
    parser.add_argument("--llm-timeout", type=float, default=120.0, help="seconds for the LLM (default 120)")
    parser.add_argument("--atlas", default="auto",
                        help="when findings are computed here: auto (Harvard-Oxford if installed), "
                             "harvard-oxford, a label image, or none")
    parser.add_argument("--seed", type=int, default=0, help="LLM decoding seed")
    add_progress_option(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; bad input raises `InputError` (the main CLI prints one line and exits 2)."""
    from voxcause.cli.progress import emit, progress_reporter
    from voxcause.report import make_report

    mode = args.progress
    atlas = None if str(args.atlas).lower() == "none" else args.atlas
    with progress_reporter(mode, "report") as progress:
        record = make_report(args.dir, llm=args.llm, llm_timeout=args.llm_timeout, atlas=atlas, seed=args.seed,
                             progress=progress)
    out = Path(args.dir)
    print(f"report ({record['renderer']}) -> {out / 'report.md'}, {out / 'report.html'}")
    for w in record["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    if mode == "json":
        emit({"event": "done", "out": str(out)})
    return 0
