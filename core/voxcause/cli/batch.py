"""``voxcause batch``: one explanation (or counterfactual, or findings) per manifest row, resumable.

    voxcause batch cohort.csv --model card.json --out results/                       # local processes
    voxcause batch cohort.csv --model card.json --scheduler tcp://head:8786 --device cuda   # Dask, GPUs

The manifest is a CSV with a header: ``image`` (required; ``a.nii.gz;b.nii.gz`` for one file per channel) and
optionally ``id``, ``model``, ``target``, ``mask``, ``label``, ``patient``; an absent column falls back to the
option of the same name. Each case writes ``OUT/<id>/`` (the command's usual files plus ``done.json``);
``OUT/results.csv`` and ``OUT/results.md`` list every case (id, status, score, forward passes, seconds,
folder, error). Running the same command again skips cases already done with the same inputs and settings
(content hash), so an interrupted batch resumes where it stopped. Exit code 0 when every case is done,
1 when some failed (they are listed; rerun to retry them), 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..explainers import DEFAULT_METHOD
from .common import (
    add_model_options,
    add_progress_option,
    add_speed_options,
    add_threads_option,
    check_threads,
    model_options,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``batch`` command on ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    parser = subparsers.add_parser(
        "batch",
        help="explain every case of a manifest, locally or on a Dask cluster; resumable",
        description="Run explain / counterfactual / findings for every row of a manifest CSV (image required; "
        "id, model, target, mask, label, patient optional) on local processes or a Dask cluster, with a "
        "progress bar and a results table. Finished cases are skipped on a rerun (content hash of inputs "
        "and settings); a failing case is recorded and the others complete.",
    )
    parser.add_argument("manifest", help="CSV with a header row: image (required), id, model, target, mask, ...")
    parser.add_argument("--command", choices=("explain", "counterfactual", "findings"), default="explain",
                        dest="batch_command", help="what to run per case (default explain; findings = explain, "
                        "then map the explanation to atlas regions)")
    parser.add_argument("--target", help="label name or index for rows without one (default: the predicted class)")
    parser.add_argument("--mask", help="mask for rows without one (segmenter region / counterfactual region)")
    parser.add_argument("--label", help="true label for rows without one (recorded in the table)")
    parser.add_argument("--patient", help="patient / group for rows without one (recorded in the table)")
    parser.add_argument("--method", default=DEFAULT_METHOD, help=f"explanation method (default {DEFAULT_METHOD})")
    parser.add_argument("--seed", type=int, default=0, help="random seed of every case (default 0)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="method option, e.g. iterations=10 (repeatable; VALUE parsed as JSON when it can be)")
    parser.add_argument("--command-option", action="append", default=[], metavar="KEY=VALUE",
                        help="option of the command itself, e.g. atlas=harvard-oxford (findings), "
                        "removal=constant (counterfactual), channel_order_checked=true or max_memory=8G (explain, "
                        "findings); repeatable")
    add_model_options(parser, required=False,
                      model_help="model for rows without a 'model' cell (file, bundle folder or card)")
    add_speed_options(parser)
    parser.add_argument("--out", default="voxcause-batch", help="output folder (default voxcause-batch)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: local processes); workers must "
                        "see the same paths")
    parser.add_argument("--workers", type=int,
                        help="local processes (default: one per CPU core, at most the cases to run; 0 = this "
                        "process)")
    add_threads_option(parser, "torch threads per case (default: CPU cores / local workers; on Dask: the worker "
                       "host's cores / the Dask threads on that host)")
    parser.add_argument("--force", action="store_true", help="recompute cases that are already done")
    add_progress_option(parser)
    parser.set_defaults(run=run)
    return parser


def _key_values(items: list[str], flag: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{flag} {item!r} is not KEY=VALUE — e.g. {flag} iterations=10")
        try:
            options[key.strip().replace("-", "_")] = json.loads(value)
        except ValueError:
            options[key.strip().replace("-", "_")] = value
    return options


class _Reporter:
    """Progress on stderr: a rich bar (default), JSON lines (``--progress json``), or nothing."""

    def __init__(self, mode: str, total: int) -> None:
        self.mode = mode
        self.bar = None
        if mode == "bar":
            from rich import progress as bars
            from rich.console import Console

            self.bar = bars.Progress(bars.TextColumn("{task.description}"), bars.BarColumn(),
                                     bars.MofNCompleteColumn(), bars.TimeElapsedColumn(), bars.TimeRemainingColumn(),
                                     console=Console(stderr=True), transient=False)
            self.task = self.bar.add_task("cases", total=total)
            self.bar.start()

    def __call__(self, result, finished: int, total: int) -> None:
        if self.mode == "json":
            from .progress import emit

            emit({"event": "progress", "stage": f"case {result.id}: {result.status}",
                  "fraction": round(finished / max(total, 1), 4)})
        elif self.bar is not None:
            self.bar.update(self.task, completed=finished, description=f"{result.id}: {result.status}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print_table(report) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"voxcause batch -> {report.out}")
    for name in ("id", "status", "score", "certificate", "forward passes", "seconds", "error"):
        table.add_column(name, justify="right" if name in ("score", "forward passes", "seconds") else "left")
    styles = {"done": "green", "skipped": "cyan", "failed": "red", "pass": "green", "weak": "yellow", "fail": "red"}
    for result in report.results:
        row = result.row()
        verdict = f"[{styles[result.certificate]}]{result.certificate}[/]" if result.certificate in styles else ""
        table.add_row(row["id"], f"[{styles[result.status]}]{result.status}[/]", row["score"], verdict,
                      row["forward_passes"], row["seconds"], row["error"][:80])
    console = Console()
    console.print(table)
    counts = report.counts
    console.print(f"{len(report.results)} cases: {counts['done']} done, {counts['skipped']} skipped, "
                  f"{counts['failed']} failed -> {report.table[1]}", highlight=False)
    if report.worker_deaths:
        console.print(f"worker processes died {report.worker_deaths} times (killed or out of memory); their cases "
                      "were rerun alone", highlight=False)


def run(args: argparse.Namespace) -> int:
    """Run the batch; bad input raises `InputError` (the main CLI prints one line and exits 2)."""
    from ..batch import Job, read_manifest, run_batch
    from ..explainers import explainer_class
    from ..models import resolve_device

    mode = args.progress
    if args.workers is not None and args.scheduler:
        print("note: --workers is for local runs; with --scheduler the cluster's workers are used", file=sys.stderr)
    check_threads(args.threads)
    # Local runs resolve ``auto`` here (it decides the number of worker processes); on Dask each worker does.
    device = args.device if args.scheduler else resolve_device(args.device)
    cases = read_manifest(args.manifest, model=args.model, target=args.target, mask=args.mask, label=args.label,
                          patient=args.patient)
    options = _key_values(args.option, "--option")
    if args.batch_command != "counterfactual":  # bad method options fail once, before any case runs
        explainer_class(args.method).options.build(args.method, options)
    job = Job(command=args.batch_command, method=args.method, seed=args.seed, device=device,
              options=options, model_options=model_options(args),
              command_options=_key_values(args.command_option, "--command-option"), threads=args.threads)
    progress: Callable | None = _Reporter(mode, len(cases)) if mode != "none" else None
    try:
        report = run_batch(cases, job, out=args.out, workers=args.workers, scheduler=args.scheduler,
                           force=args.force, progress=progress)
    except KeyboardInterrupt as stop:
        finished, total = getattr(stop, "finished", None), getattr(stop, "total", len(cases))
        counted = f"{finished} of {total} cases finished, {total - finished} left; " if finished is not None else ""
        print(f"\ninterrupted: {counted}finished cases are kept in {Path(args.out)}; run the same command again to "
              "resume", file=sys.stderr)
        return 130
    finally:
        if isinstance(progress, _Reporter):
            progress.close()
    if mode == "json":
        from .progress import emit

        emit({"event": "done", "out": str(report.out)})
    else:
        _print_table(report)
    return 1 if report.failed else 0
