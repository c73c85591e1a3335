"""An explanation folder -> structured findings (`findings.json`, versioned schema, validated).

Reads what `voxcause explain` wrote to DIR (`map.nii.gz`, `summary.json`, and the input image recorded
under `summary["input"]`), turns the map into a mask (adaptive percentile threshold inside the
foreground, specks removed), describes its components (ml, RAS mm), names the atlas regions it falls in
(registering the scan to MNI first when it is not already there) and gathers the prediction,
explanation, counterfactual and faithfulness numbers from the summary. Every number lives under a key
that says its unit. Nothing here interprets: the report does that, from these numbers only.

Example::

    from voxcause.findings import make_findings, write_findings
    findings = make_findings("out/case1", atlas="harvard-oxford")
    write_findings("out/case1", findings)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from voxcause._version import __version__
from voxcause.errors import InputError
from voxcause.evaluate.metrics import dice
from voxcause.explanation import check_one_explanation, read_summary, summary_schema
from voxcause.findings.atlas import Atlas, labels_on_grid, load_atlas, region_table, unlabelled_fraction
from voxcause.findings.components import clean_mask, describe_components, lps_to_ras, voxel_volume_ml
from voxcause.findings.registration import check_in_template_space, register_to_template
from voxcause.findings.thresholding import adaptive_threshold, foreground_mask
from voxcause.jsonio import jsonable

SCHEMA_VERSION = "1.0.0"
COUNTERFACTUAL_KEYS = ("p_orig", "p_remove", "p_only", "delta_drop", "delta_focus")
#: summary.json blocks the schema leaves open (its ``additionalProperties``) that the findings keep in blocks of
#: their own rather than under "explanation".
OWN_BLOCKS = frozenset({*COUNTERFACTUAL_KEYS, "faithfulness", "sanity", "labels"})


def schema() -> dict:
    """The findings JSON Schema (draft 2020-12) shipped with the package."""
    text = resources.files("voxcause.findings").joinpath("findings.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def validate_findings(findings: dict) -> None:
    """Raise `InputError` naming the first schema violation (path and message)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(findings), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise InputError(f"findings do not match schema {SCHEMA_VERSION} at {where}: {e.message}; "
                         "regenerate them with `voxcause findings DIR`")


def _method_blocks(summary: dict) -> dict:
    """The method's settings (``params``), the explanations' sizes on the image (``mask_sizes``) and its own
    blocks (``sufficient``, ``contrastive``, ...: the keys summary.schema.json does not declare), for the
    findings' "explanation"; the declared run record (target, input, model, certificate, costs, ...) has its own
    place in the findings."""
    declared = set(summary_schema()["properties"]) - {"params", "mask_sizes"}
    return {k: v for k, v in summary.items() if k not in declared and k not in OWN_BLOCKS}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _input_paths(summary: dict, out_dir: Path) -> list[Path]:
    raw = summary.get("input")
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    paths = []
    for item in items:
        p = Path(str(item)).expanduser()
        if not p.is_absolute() and not p.exists() and (out_dir / p).exists():
            p = out_dir / p
        paths.append(p)
    return paths


def _read_input(paths: list[Path]) -> tuple[np.ndarray, sitk.Image]:
    """(array (C, *S), first-channel SimpleITK image) through the core reader when present."""
    try:
        from voxcause.io import read_image  # the core's reader: DICOM folders, 4D, vector images
    except ImportError:  # pragma: no cover - the core's io is always there once integrated
        read_image = None
    if read_image is not None:
        vol = read_image([str(p) for p in paths] if len(paths) > 1 else str(paths[0]))
        return np.asarray(vol.array, dtype=np.float32), vol.reference
    images = [sitk.ReadImage(str(p), sitk.sitkFloat32) for p in paths]
    return np.stack([sitk.GetArrayFromImage(i) for i in images]), images[0]


def _same_grid(a: sitk.Image, b: sitk.Image, tol: float = 1e-3) -> bool:
    return (a.GetSize() == b.GetSize()
            and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=tol * 100)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=tol))


def _in_atlas_box(atlas: Atlas, reference: sitk.Image, foreground: np.ndarray) -> float:
    """Share of foreground voxels that fall inside the physical bounding box of the atlas's labels."""
    arr = sitk.GetArrayViewFromImage(atlas.labels)
    nz = np.argwhere(arr > 0)
    lo, hi = nz.min(0)[::-1], nz.max(0)[::-1]
    corners = np.array([[atlas.labels.TransformIndexToPhysicalPoint(tuple(int(c) for c in (x, y, z)))
                         for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]])[0]
    pmin, pmax = corners.min(0) - 1e-3, corners.max(0) + 1e-3
    idx = np.argwhere(foreground)[:: max(1, int(foreground.sum()) // 20000)]
    pts = np.array([reference.TransformIndexToPhysicalPoint(tuple(int(v) for v in i[::-1])) for i in idx])
    return float(np.all((pts >= pmin) & (pts <= pmax), axis=1).mean()) if len(pts) else 0.0


def _place_in_atlas(
    atlas: Atlas, subject: sitk.Image | None, reference: sitk.Image, foreground: np.ndarray, *,
    register: str, seed: int, warnings: list[str],
) -> tuple[sitk.Transform | None, dict | None, str | None]:
    """(transform subject->atlas or None, registration record, skipped reason or None)."""
    if register not in ("auto", "always", "never"):
        raise InputError(f"register must be auto, always or never, not {register!r}")
    if _same_grid(atlas.labels, reference):
        return sitk.Transform(3, sitk.sitkIdentity), {"performed": False, "quality": "identity",
                                                      "message": "image is on the atlas grid"}, None
    if atlas.template is None:
        if register == "always":
            raise InputError(f"atlas {atlas.name} has no template to register to; pass --atlas-template T1 "
                             "(a T1 image in the atlas's space) or use --atlas harvard-oxford")
        share = _in_atlas_box(atlas, reference, foreground)
        if share < 0.9:
            raise InputError(
                f"image and atlas {atlas.name} are not in the same space ({share:.0%} of the image lies inside "
                "the atlas); resample the atlas onto the image, or give --atlas-template to register"
            )
        return sitk.Transform(3, sitk.sitkIdentity), {"performed": False, "quality": "assumed",
                                                      "message": "same physical space assumed"}, None
    if subject is None:
        return None, None, "the input image is not available, so it cannot be placed in atlas space"
    template = sitk.ReadImage(str(atlas.template), sitk.sitkFloat32)
    if register != "always":
        check = check_in_template_space(subject, template)
        if check.quality == "identity":
            return check.transform, check.to_dict(), None
        if register == "never":
            raise InputError(
                f"image and atlas {atlas.name} are in different spaces (NCC {check.ncc:.2f}, brain Dice "
                f"{check.dice:.2f} without registration); use --register auto, or register the image to MNI"
            )
    reg = register_to_template(subject, template, seed=seed)
    record = reg.to_dict()
    if reg.quality == "failed":
        return None, record, reg.message
    if reg.quality == "poor":
        warnings.append(reg.message)
    return reg.transform, record, None


def make_findings(
    out_dir: str | Path,
    *,
    atlas: str | Path | Atlas | None = "harvard-oxford",
    atlas_names: str | Path | None = None,
    atlas_template: str | Path | None = None,
    register: str = "auto",
    reference_mask: str | Path | np.ndarray | None = None,
    seed: int = 0,
    min_fraction: float = 0.0001,
    max_fraction: float = 0.15,
    progress: Callable[[str, float], None] | None = None,
) -> dict:
    """Findings for the explanation in `out_dir` (see the module docstring).

    Args:
        out_dir: folder written by `voxcause explain` (map.nii.gz, summary.json).
        atlas: "harvard-oxford", a label-image path, an `Atlas`, or None (no region names).
        atlas_names, atlas_template: for a user atlas: its names table and a T1 in its space.
        register: "auto" (register only when the image is not already in atlas space), "always",
            or "never" (bad input if the spaces differ).
        reference_mask: a mask (path or bool array `(*S)` on the map's grid) to report Dice against.
        seed: registration sampling seed.
        min_fraction, max_fraction: plausible mask size, as a share of the foreground.
        progress: optional callback (stage, fraction).

    Returns:
        A dict that validates against `schema()`.
    """
    out_dir = Path(out_dir)
    note = progress or (lambda stage, fraction: None)
    summary_path, map_path = out_dir / "summary.json", out_dir / "map.nii.gz"
    check_one_explanation(out_dir)
    for p in (summary_path, map_path):
        if not p.exists():
            raise InputError(f"{out_dir} has no {p.name}; run `voxcause explain IMAGE --out {out_dir}` first")
    summary = read_summary(summary_path)
    warnings: list[str] = []
    note("reading", 0.0)
    map_img = sitk.ReadImage(str(map_path), sitk.sitkFloat32)
    amap = sitk.GetArrayFromImage(map_img)
    if not np.isfinite(amap).all():
        warnings.append("the map has non-finite values; they were treated as 0")
        amap = np.nan_to_num(amap, nan=0.0, posinf=0.0, neginf=0.0)

    paths = _input_paths(summary, out_dir)
    image, subject = None, None
    if not paths:
        warnings.append("summary.json names no input image; the foreground is the whole grid")
    elif not all(p.exists() for p in paths):
        warnings.append(f"input image {paths[0]} is not available; the foreground is the whole grid")
    else:
        image, subject = _read_input(paths)
        if image.shape[1:] != amap.shape:
            warnings.append(f"input image grid {image.shape[1:]} differs from the map's {amap.shape}; ignored")
            image, subject = None, None
    foreground = foreground_mask(image) if image is not None else np.ones(amap.shape, dtype=bool)

    note("thresholding", 0.2)
    thr = adaptive_threshold(amap, foreground=foreground, min_fraction=min_fraction, max_fraction=max_fraction)
    mask = clean_mask(thr.mask) if thr.mask.any() else thr.mask
    if thr.rule == "flat_map":
        warnings.append("the map is flat (no positive peak) inside the foreground: no region to report")
    elif thr.rule == "plausible_size":
        warnings.append(f"no threshold gave one dominant region; the top {100 - thr.percentile:g}% "
                        "is reported in several pieces")
    elif thr.rule == "nearest_size":
        warnings.append("no threshold gave a mask of plausible size; the closest one is reported")
    comps = describe_components(mask, amap, map_img, foreground=foreground)
    positive = np.clip(np.where(foreground, amap, 0.0), 0, None)
    total = float(positive.sum())

    ref_dice = None
    if reference_mask is not None:
        ref = reference_mask
        if not isinstance(ref, np.ndarray):
            ref = sitk.GetArrayFromImage(sitk.ReadImage(str(ref))) > 0
        ref_dice = round(dice(mask, ref), 4)

    comps_out = [c.to_dict() for c in comps]
    note("atlas", 0.4)
    atlas_block: dict = {"name": None, "used": False, "skipped_reason": "no atlas was requested"}
    regions: list[dict] = []
    unlabelled = None
    if atlas is not None:
        atlas_obj = atlas if isinstance(atlas, Atlas) else load_atlas(
            atlas, **({} if str(atlas).lower() in ("harvard-oxford", "harvard_oxford", "ho") else
                      {"names": atlas_names, "template": atlas_template}))
        atlas_block = {"name": atlas_obj.name, "used": False, "skipped_reason": None, "space": atlas_obj.space,
                       "licence": atlas_obj.licence, "registration": None}
        if amap.ndim != 3:
            atlas_block["skipped_reason"] = "the image is 2D; brain atlases need a 3D volume"
        elif not mask.any():
            atlas_block["skipped_reason"] = "the mask is empty"
        else:
            transform, record, reason = _place_in_atlas(
                atlas_obj, subject, map_img, foreground, register=register, seed=seed, warnings=warnings)
            atlas_block["registration"] = record
            if reason:
                atlas_block["skipped_reason"] = reason
                warnings.append(f"atlas regions skipped: {reason}")
            else:
                note("regions", 0.8)
                labels = labels_on_grid(atlas_obj, map_img, transform)
                regions = region_table(mask, amap, labels, atlas_obj, map_img, foreground=foreground)
                unlabelled = round(unlabelled_fraction(mask, labels), 4)
                atlas_block["used"] = True
                if record and record.get("performed") and atlas_obj.space == "MNI152":
                    for c, d in zip(comps, comps_out, strict=True):
                        mni_lps = transform.TransformPoint(tuple(lps_to_ras(c.centroid_ras_mm)))
                        d["centroid_mni_ras_mm"] = [round(v, 1) + 0.0 for v in lps_to_ras(mni_lps)]

    vml = voxel_volume_ml(map_img)
    target = summary.get("target") or {}
    model = summary.get("model")
    model_block = model if isinstance(model, dict) else {"name": None if model is None else str(model)}
    labels_list = summary.get("labels") or (model.get("labels") if isinstance(model, dict) else None)
    prediction = {
        "target_index": target.get("index"),
        "target_label": None if target.get("label") is None else str(target.get("label")),
        "score": summary.get("score"),
    }
    if isinstance(labels_list, list):
        prediction["labels"] = [str(v) for v in labels_list]
    explanation = {k: summary.get(k) for k in ("method", "forward_passes", "seconds", "device")}
    explanation["method"] = str(explanation.get("method") or "unknown")
    explanation.update(_method_blocks(summary))
    cf = {k: summary[k] for k in COUNTERFACTUAL_KEYS if k in summary}
    findings = {
        "schema": "voxcause-findings",
        "schema_version": SCHEMA_VERSION,
        "input": {
            "paths": [str(p) for p in paths],
            "size_voxels": list(map_img.GetSize()),
            "spacing_mm": [round(float(s), 4) for s in map_img.GetSpacing()],
            "coordinate_system": "RAS",
            "channels": int(image.shape[0]) if image is not None else 1,
            "foreground_volume_ml": round(float(foreground.sum()) * vml, 3),
        },
        "model": model_block,
        "prediction": prediction,
        "explanation": explanation,
        "mask": {
            "method": "adaptive_percentile",
            "rule": thr.rule,
            "percentile": thr.percentile,
            "threshold": thr.threshold,
            "voxels": int(mask.sum()),
            "volume_ml": round(float(mask.sum()) * vml, 3),
            "fraction_of_foreground": round(float((mask & foreground).sum()) / max(1, int(foreground.sum())), 5),
            "n_components": len(comps),
            "attribution_fraction": round(float(positive[mask].sum()) / total, 4) if total > 0 else 0.0,
            "dice_reference": ref_dice,
            "unlabelled_fraction": unlabelled,
        },
        "components": comps_out,
        "atlas": atlas_block,
        "regions": regions,
        "counterfactual": cf or None,
        "faithfulness": summary.get("faithfulness"),
        "certificate": summary.get("certificate"),
        "sanity": summary.get("sanity"),
        "warnings": warnings,
        "provenance": {
            "voxcause_version": __version__,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "map_sha256": _sha256(map_path),
            "summary_sha256": _sha256(summary_path),
            "explain_version": summary.get("version"),
        },
    }
    findings = jsonable(findings)
    validate_findings(findings)
    note("done", 1.0)
    return findings


def write_findings(out_dir: str | Path, findings: dict) -> Path:
    """Validate and write `out_dir/findings.json` atomically (temp file, then rename)."""
    from voxcause.io.atomic import atomic_path

    validate_findings(findings)
    path = Path(out_dir) / "findings.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(findings, indent=2) + "\n", encoding="utf-8")
    return path


def read_findings(out_dir: str | Path) -> dict:
    """Read and validate `out_dir/findings.json`."""
    path = Path(out_dir) / "findings.json"
    if not path.exists():
        raise InputError(f"{out_dir} has no findings.json; run `voxcause findings {out_dir}` first")
    findings = json.loads(path.read_text(encoding="utf-8"))
    validate_findings(findings)
    return findings
