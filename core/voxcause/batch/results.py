"""The per-case outcome and the results table (``results.csv`` and ``results.md``) of a batch.

The table is rewritten atomically after every finished case, so an interrupted batch still leaves a
complete table of what it had done, and a reader never sees a half-written file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..io import atomic_path

TABLE_COLUMNS = (
    "id", "status", "score", "certificate", "forward_passes", "seconds", "out", "error", "target", "label", "patient",
)


@dataclass
class CaseResult:
    """What happened to one case.

    Attributes:
        id: the case id (its output folder is ``out``).
        status: ``done`` (computed now), ``skipped`` (already done with the same content hash) or ``failed``.
        score: the explained target's score on the input (from the case's summary), None when failed.
        forward_passes: model samples forwarded for the case.
        seconds: wall time of the case's work (for a skipped case: the time it took when it was computed).
        out: the case's output folder ("" when failed).
        error: one line saying what went wrong ("" unless failed).
        target: the explained target's label.
        certificate: the explanation's certificate verdict (pass, weak, fail; None when the command has none),
            so a weak or failed explanation shows in the table, not only in the case's summary.json.
        label, patient: copied from the manifest.
        hash: the content hash of inputs and settings.
        worker: where it ran (``host:pid``), for the record.
    """

    id: str
    status: str
    score: float | None = None
    forward_passes: int | None = None
    seconds: float | None = None
    out: str = ""
    error: str = ""
    target: str | None = None
    certificate: str | None = None
    label: str | None = None
    patient: str | None = None
    hash: str = ""
    worker: str = ""

    def row(self) -> dict[str, str]:
        """The table cells of this result (numbers rounded for reading)."""
        values = asdict(self)
        cells = {}
        for name in TABLE_COLUMNS:
            value = values[name]
            if value is None:
                cells[name] = ""
            elif name == "score":
                cells[name] = f"{value:.4f}"
            elif name == "seconds":
                cells[name] = f"{value:.2f}"
            else:
                cells[name] = str(value)
        return cells


@dataclass
class BatchState:
    """How far a batch got, for the table's footer: cases in the manifest, worker deaths, whether it was stopped."""

    total: int | None = None
    worker_deaths: int = 0
    interrupted: bool = False


def footer(results: Sequence[CaseResult], state: BatchState | None = None) -> str:
    """``6 cases: 5 done, 0 skipped, 1 failed; certificates: 4 pass, 1 weak, 0 fail`` (``2 of 6 cases: ..., 4 not
    run`` while some are left), then a line for worker processes that died and one for an interrupted run."""
    state = state or BatchState()
    counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
    total = len(results) if state.total is None else state.total
    left = max(0, total - len(results))
    head = f"{len(results)} cases" if not left else f"{len(results)} of {total} cases"
    verdicts = {verdict: sum(r.certificate == verdict for r in results) for verdict in ("pass", "weak", "fail")}
    certified = (f"; certificates: {verdicts['pass']} pass, {verdicts['weak']} weak, {verdicts['fail']} fail"
                 if any(verdicts.values()) else "")
    lines = [f"{head}: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed"
             + (f", {left} not run" if left else "") + certified]
    if state.worker_deaths:
        lines.append(f"worker processes died {state.worker_deaths} times (killed or out of memory); their cases "
                     "were rerun alone, and a case whose worker died twice is marked failed")
    if state.interrupted:
        lines.append(f"interrupted: {left} cases left — run the same command again to resume")
    return "\n".join(lines)


def _markdown(results: Sequence[CaseResult], state: BatchState | None) -> str:
    def escape(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(escape(r.row()[c]) for c in TABLE_COLUMNS) + " |" for r in results]
    return "\n".join(lines) + "\n\n" + footer(results, state).replace("\n", "\n\n") + "\n"


def write_results(out: str | Path, results: Sequence[CaseResult], state: BatchState | None = None
                  ) -> tuple[Path, Path]:
    """Write ``results.csv`` and ``results.md`` (with `footer`) into ``out`` atomically; returns their paths."""
    folder = Path(out)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in results:
        writer.writerow(result.row())
    csv_path, md_path = folder / "results.csv", folder / "results.md"
    with atomic_path(csv_path) as temp:
        temp.write_text(buffer.getvalue(), encoding="utf-8")
    with atomic_path(md_path) as temp:
        temp.write_text(_markdown(results, state), encoding="utf-8")
    return csv_path, md_path
