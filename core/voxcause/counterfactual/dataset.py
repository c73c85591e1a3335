"""Dataset mode: a manifest of cases -> per-case CSV, per-class and correct-vs-misclassified tables, a plot.

The manifest is the shared one (docs/design.md#manifests; `voxcause.batch.manifest`): ``image`` plus
``mask``, ``label`` (the true class, required here: the tables are grouped by it), ``patient``, and
optionally ``id``, ``target``, ``model``. Each case is scored with `counterfactual`; a case that fails (an
empty mask, a mask outside its image ...) is recorded with its error in the table and the others still run.

Outputs (each written atomically):
    ``cases.csv``       one row per case: ids, label, predicted class, correct, p_orig, p_remove, p_only,
                        delta_drop, delta_focus, relative_drop, classes of each image, status, error;
    ``per_class.csv``   per true class: n, mean / sd / median of ΔDrop and ΔFocus, share of flipped decisions;
    ``correctness.csv`` the same for correctly classified vs misclassified cases;
    ``dataset_summary.json`` the tables, counts and failures;
    ``distributions.png`` / ``.pdf`` per-class distributions of ΔDrop and ΔFocus (points coloured by
                        correct / misclassified over box plots), sized for a paper column pair;
    ``cases/<id>/``     each case's own outputs (``save_cases=True``, the default).
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import atomic_path
from ..jsonio import dumps
from ..models import LoadedModel, load_model
from ..typing import Progress

CASE_COLUMNS = ("id", "patient", "image", "mask", "label", "target", "predicted", "correct", "p_orig", "p_remove",
                "p_only", "delta_drop", "delta_focus", "relative_drop", "class_remove", "class_only", "flips",
                "filled_voxels", "seconds", "status", "error")
STAT_COLUMNS = ("group", "n", "delta_drop_mean", "delta_drop_sd", "delta_drop_median", "delta_focus_mean",
                "delta_focus_sd", "delta_focus_median", "relative_drop_median", "flip_rate")


@dataclass
class DatasetResult:
    """What `run_manifest` produced: the rows, the two tables, the failures and where they were written."""

    rows: list[dict[str, Any]]
    per_class: list[dict[str, Any]]
    correctness: list[dict[str, Any]]
    failures: list[dict[str, Any]] = field(default_factory=list)
    out_dir: Path | None = None


def _is_correct(label: str, predicted: dict[str, Any]) -> bool:
    text = str(label).strip()
    if text.lstrip("-").isdigit():
        return int(text) == int(predicted["index"])
    return text.lower() == str(predicted["label"]).lower()


def _describe(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    data = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if data.size == 0:
        return None, None, None
    sd = float(data.std(ddof=1)) if data.size > 1 else 0.0
    return float(data.mean()), sd, float(np.median(data))


def group_table(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], str],
                order: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Mean / sd / median of ΔDrop and ΔFocus per group of the successful ``rows``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "ok":
            groups.setdefault(key(row), []).append(row)
    names = [g for g in (order or []) if g in groups] + sorted(g for g in groups if g not in (order or []))
    table = []
    for name in names:
        members = groups[name]
        drop = _describe([r["delta_drop"] for r in members])
        focus = _describe([r["delta_focus"] for r in members])
        relative = _describe([r["relative_drop"] for r in members])
        table.append({"group": name, "n": len(members),
                      "delta_drop_mean": drop[0], "delta_drop_sd": drop[1], "delta_drop_median": drop[2],
                      "delta_focus_mean": focus[0], "delta_focus_sd": focus[1], "delta_focus_median": focus[2],
                      "relative_drop_median": relative[2],
                      "flip_rate": sum(bool(r["flips"]) for r in members) / len(members)})
    return table


def _csv_text(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else ("" if v is None else v)) for k, v in row.items()})
    return buffer.getvalue()


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temp:
        temp.write_text(text, encoding="utf-8")


def run_manifest(
    manifest: str | Path,
    *,
    out_dir: str | Path,
    model: str | Path | LoadedModel | None = None,
    target: str | int | None = None,
    mask: str | None = None,
    label: str | None = None,
    segmenter: Any = None,
    explanation_method: str | None = None,
    save_cases: bool = True,
    target_from: str = "predicted",
    device: str = "auto",
    progress: Progress | None = None,
    **options: Any,
) -> DatasetResult:
    """Run `counterfactual` on every case of ``manifest`` and write the tables and the plot into ``out_dir``.

    Args:
        manifest: CSV with ``image``, ``mask`` (unless ``segmenter``/``explanation_method`` give the region),
            ``label`` (true class; required), optional ``patient``, ``id``, ``target``, ``model``.
        out_dir: output folder.
        model, target, mask, label: fallbacks for absent columns / empty cells (the CLI options).
        segmenter / explanation_method: region source for every case instead of the mask column.
        save_cases: also write each case's images and overview into ``out_dir/cases/<id>``.
        target_from: for rows without a target: ``predicted`` (default; the class the model calls, as in
            single-image mode) or ``label`` (the true class: "how much of P(glioma) does the tumour carry?"
            also for misclassified cases).
        device, progress: as for `counterfactual`; **options: further `counterfactual` options.

    Raises:
        InputError: manifest problems found before any case runs (no image column, missing files, no
            model, missing labels or masks).
    """
    from ..batch.manifest import read_manifest
    from .case import counterfactual

    report = progress or (lambda stage, fraction: None)
    if target_from not in ("predicted", "label"):
        raise InputError(f"unknown target source {target_from!r} — use predicted or label")
    models: dict[str, LoadedModel] = {}
    fallback = str(model) if isinstance(model, str | Path) else None
    if isinstance(model, LoadedModel):
        # An already loaded model stands in for the --model fallback; the manifest's own path is a key that
        # exists on disk, so the manifest reader accepts it, and it is mapped to the loaded model here.
        fallback = str(Path(manifest).resolve())
        models[fallback] = model
    cases = read_manifest(manifest, model=fallback, target=target, mask=mask, label=label)
    unlabelled = [c.row for c in cases if not c.label]
    if unlabelled:
        raise InputError(f"manifest rows {', '.join(map(str, unlabelled[:10]))} have no label — add a 'label' column "
                         "with each case's true class (the tables are grouped by it) or pass --label")
    if segmenter is None and explanation_method is None:
        maskless = [c.row for c in cases if not c.mask]
        if maskless:
            raise InputError(f"manifest rows {', '.join(map(str, maskless[:10]))} have no mask — add a 'mask' column, "
                             "pass --mask, or take the region from --mask-from-segmenter / --mask-from-explanation")
    out = Path(out_dir)
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    label_order: list[str] = []
    for number, case in enumerate(cases):
        report(f"case {case.id} ({number + 1}/{len(cases)})", number / len(cases))
        started = time.perf_counter()
        row: dict[str, Any] = {"id": case.id, "patient": case.patient or "", "image": ";".join(case.image),
                               "mask": case.mask or "", "label": case.label, "target": case.target}
        try:
            if case.model not in models:
                models[case.model] = load_model(case.model, device=device)
            loaded = models[case.model]
            if not label_order and loaded.card.labels:
                label_order = list(loaded.card.labels)
            target_of_case = case.label if case.target is None and target_from == "label" else case.target
            from_mask = segmenter is None and explanation_method is None
            result = counterfactual(list(case.image), model=loaded, mask=case.mask if from_mask else None,
                                    segmenter=segmenter, explanation_method=explanation_method,
                                    target=target_of_case, device=device, **options)
            scores = result.scores
            row.update({"target": scores.target["label"], "predicted": scores.predicted["orig"]["label"],
                        "correct": _is_correct(case.label, scores.predicted["orig"]),
                        "p_orig": scores.p_orig, "p_remove": scores.p_remove, "p_only": scores.p_only,
                        "delta_drop": scores.delta_drop, "delta_focus": scores.delta_focus,
                        "relative_drop": scores.relative_drop, "class_remove": scores.predicted["remove"]["label"],
                        "class_only": scores.predicted["only"]["label"], "flips": scores.flips(),
                        "filled_voxels": int(result.removal.filled.sum()), "status": "ok", "error": ""})
            if save_cases:
                result.save(out / "cases" / case.id)
        except Exception as error:  # noqa: BLE001 - one bad case must not stop a cohort run; it is recorded
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            row.update({"status": "error", "error": f"{type(error).__name__}: {message}"})
            failures.append({"id": case.id, "row": case.row, "error": row["error"]})
        row["seconds"] = round(time.perf_counter() - started, 3)
        rows.append(row)
    per_class = group_table(rows, lambda r: str(r["label"]), label_order)
    correctness = group_table(rows, lambda r: "correct" if r["correct"] else "misclassified",
                              ["correct", "misclassified"])
    _write_text(out / "cases.csv", _csv_text(rows, CASE_COLUMNS))
    _write_text(out / "per_class.csv", _csv_text(per_class, STAT_COLUMNS))
    _write_text(out / "correctness.csv", _csv_text(correctness, STAT_COLUMNS))
    from .._version import __version__

    summary = {"method": "counterfactual-dataset", "version": __version__, "manifest": str(manifest),
               "cases": len(rows), "succeeded": len(rows) - len(failures), "failed": len(failures),
               "target_from": target_from,
               "failures": failures, "per_class": per_class, "correctness": correctness, "options": options}
    _write_text(out / "dataset_summary.json", dumps(summary))
    if any(r["status"] == "ok" for r in rows):
        from .plots import plot_distributions

        plot_distributions(out / "distributions.png", rows, order=label_order)
    report("done", 1.0)
    return DatasetResult(rows=rows, per_class=per_class, correctness=correctness, failures=failures, out_dir=out)
