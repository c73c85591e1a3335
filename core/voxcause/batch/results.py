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
    "id", "status", "score", "forward_passes", "seconds", "out", "error", "target", "label", "patient",
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


def _markdown(results: Sequence[CaseResult]) -> str:
    def escape(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(escape(r.row()[c]) for c in TABLE_COLUMNS) + " |" for r in results]
    counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
    footer = (
        f"\n{len(results)} cases: {counts['done']} done, {counts['skipped']} skipped, "
        f"{counts['failed']} failed\n"
    )
    return "\n".join(lines) + "\n" + footer


def write_results(out: str | Path, results: Sequence[CaseResult]) -> tuple[Path, Path]:
    """Write ``results.csv`` and ``results.md`` into ``out`` atomically; returns their paths."""
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
        temp.write_text(_markdown(results), encoding="utf-8")
    return csv_path, md_path
