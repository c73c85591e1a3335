"""Reading a batch manifest: one case per CSV row, checked before any work starts.

A manifest is a CSV file with a header row. ``image`` is required; ``id``, ``model``, ``target``, ``mask``,
``label`` and ``patient`` are optional, and a column that is absent (or a cell that is empty) falls back to
the command-line option of the same name. Header names are matched case-insensitively; other columns are
kept in `Case.extra` and otherwise ignored.

Paths in the manifest are read relative to the manifest's folder first (so a cohort folder can be moved as a
whole), then relative to the current folder. Several files for one multi-channel image (T1, T1c, T2, FLAIR)
go in one ``image`` cell separated by ``;``.

Everything a user can fix in the manifest (no ``image`` column, a missing file, duplicate ids, no model)
raises `InputError` here, before a single case runs, so a cohort run never dies halfway on a typo.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import InputError

COLUMNS = ("image", "id", "model", "target", "mask", "label", "patient")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_COMPOUND_SUFFIXES = (
    ".nii.gz", ".seg.nrrd", ".nii", ".nrrd", ".mha", ".mhd", ".png", ".jpg", ".tif", ".tiff",
)


@dataclass(frozen=True)
class Case:
    """One manifest row with its paths resolved to absolute paths and the CLI fallbacks applied.

    Attributes:
        id: folder-safe case name (the output folder is ``OUT/<id>``).
        row: the 1-based data row in the manifest (the header is row 0), for messages.
        image: one path per channel file (a single entry for most images).
        model: the model file, bundle folder or model card.
        target: a label name, a class index, or None for the model's default target.
        mask: a region / lesion mask, or None.
        label: the true label, recorded in the results table (not used for the explanation).
        patient: a patient / group key, recorded in the results table.
        extra: any other columns of the row, unchanged.
    """

    id: str
    row: int
    image: tuple[str, ...]
    model: str
    target: str | int | None = None
    mask: str | None = None
    label: str | None = None
    patient: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _resolve(value: str, base: Path, *, what: str, where: str) -> str:
    """An existing absolute path for ``value`` (tried against the manifest's folder, then the current one)."""
    candidate = Path(os.path.expanduser(value))
    tried = [candidate] if candidate.is_absolute() else [base / candidate, Path.cwd() / candidate]
    for path in tried:
        if path.exists():
            return str(path.resolve())
    raise InputError(
        f"{where}: {what} {value!r} not found (looked in {' and '.join(str(p.parent) for p in tried)}) — "
        "fix the path; relative paths are read from the manifest's folder"
    )


def _default_id(image: str) -> str:
    name = Path(image).name
    for suffix in _COMPOUND_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem or name


def _safe_id(value: str) -> str:
    safe = _UNSAFE.sub("_", value.strip()).strip("._")
    return safe or "case"


def _target(value: str | int | None) -> str | int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    text = value.strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def read_manifest(
    path: str | os.PathLike,
    *,
    model: str | None = None,
    target: str | int | None = None,
    mask: str | None = None,
    label: str | None = None,
    patient: str | None = None,
) -> list[Case]:
    """Read and check a manifest; keyword options are the fallbacks for absent columns / empty cells.

    Args:
        path: the CSV file.
        model, target, mask, label, patient: values used where the manifest has no such column or an empty
            cell (the CLI options ``--model`` etc.). Relative ``model`` / ``mask`` paths given here are read
            from the current folder.

    Returns:
        The cases in manifest order.

    Raises:
        InputError: the file is missing or empty, has no ``image`` column, names a file that does not exist,
            repeats an id, or leaves a case without a model.
    """
    source = Path(path)
    if not source.is_file():
        raise InputError(
            f"manifest {source} not found — pass a CSV file with a header row and an 'image' column"
        )
    base = source.resolve().parent
    with open(source, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        rows = [row for row in reader if any(cell.strip() for cell in row)]
    if not rows:
        raise InputError(
            f"manifest {source} is empty — add a header row (image,id,model,...) and one row per case"
        )
    header = [cell.strip().lower() for cell in rows[0]]
    if "image" not in header:
        raise InputError(
            f"manifest {source} has no 'image' column (header: {', '.join(header) or 'empty'}) — "
            "add a header row whose 'image' column holds each case's image path"
        )
    duplicates = sorted({name for name in header if header.count(name) > 1 and name})
    if duplicates:
        raise InputError(
            f"manifest {source} repeats the column(s) {', '.join(duplicates)} — keep one of each"
        )
    if len(rows) == 1:
        raise InputError(f"manifest {source} has a header but no cases — add one row per image")

    fallback_model = str(Path(model).resolve()) if model and Path(model).exists() else model
    fallback_mask = str(Path(mask).resolve()) if mask and Path(mask).exists() else mask
    cases: list[Case] = []
    for number, cells in enumerate(rows[1:], start=1):
        if len(cells) > len(header):
            raise InputError(
                f"manifest {source} row {number} has {len(cells)} cells but the header has {len(header)} — "
                "quote cells that contain commas"
            )
        values = {name: cell.strip() for name, cell in zip(header, cells, strict=False)}
        where = f"manifest {source.name} row {number}"
        image_cell = values.get("image", "")
        if not image_cell:
            raise InputError(f"{where}: the 'image' cell is empty — give the image path or delete the row")
        parts = [part.strip() for part in image_cell.split(";") if part.strip()]
        images = tuple(_resolve(part, base, what="image", where=where) for part in parts)
        model_cell = values.get("model") or None
        if model_cell:
            model_path = _resolve(model_cell, base, what="model", where=where)
        elif fallback_model:
            model_path = _resolve(fallback_model, Path.cwd(), what="model (--model)", where=where)
        else:
            raise InputError(f"{where}: no model — add a 'model' column or pass --model")
        mask_cell = values.get("mask") or None
        if mask_cell:
            mask_path = _resolve(mask_cell, base, what="mask", where=where)
        elif fallback_mask:
            mask_path = _resolve(fallback_mask, Path.cwd(), what="mask (--mask)", where=where)
        else:
            mask_path = None
        cases.append(
            Case(
                id=values.get("id") or "",
                row=number,
                image=images,
                model=model_path,
                target=_target(values.get("target") or target),
                mask=mask_path,
                label=values.get("label") or label,
                patient=values.get("patient") or patient,
                extra={k: v for k, v in values.items() if k not in COLUMNS and k},
            )
        )
    return _with_ids(cases, source)


def _with_ids(cases: list[Case], source: Path) -> list[Case]:
    """Give every case a unique folder-safe id: explicit ids must be unique; derived ones get ``-<row>``."""
    explicit: dict[str, int] = {}
    for case in cases:
        if case.id:
            safe = _safe_id(case.id)
            if safe in explicit:
                raise InputError(
                    f"manifest {source} repeats the id {case.id!r} (rows {explicit[safe]} and {case.row}) — "
                    "make each id unique (it names the case's output folder)"
                )
            explicit[safe] = case.row
    derived = [_safe_id(_default_id(case.image[0])) if not case.id else "" for case in cases]
    result = []
    for case, name in zip(cases, derived, strict=True):
        if case.id:
            new_id = _safe_id(case.id)
        elif derived.count(name) > 1 or name in explicit:
            new_id = f"{name}-{case.row}"
        else:
            new_id = name
        result.append(replace(case, id=new_id))
    return result
