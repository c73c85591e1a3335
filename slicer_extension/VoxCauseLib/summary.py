"""The text of the results area: the numbers that matter from summary.json, and the report if there is one."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def read_summary(out_dir: str | Path) -> dict[str, Any]:
    """summary.json of a run folder ({} when it is missing or unreadable: the panel still shows the map)."""
    try:
        data = json.loads((Path(out_dir) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_report(out_dir: str | Path) -> str:
    """report.md of a run folder, or '' when the run wrote none."""
    try:
        return (Path(out_dir) / "report.md").read_text(encoding="utf-8")
    except OSError:
        return ""


def _num(value: Any, fmt: str = ".3f") -> str:
    return format(value, fmt) if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


CERTIFICATE_HEADLINES = {
    "pass": "Certificate: PASS",
    "weak": "Certificate: WEAK (read with care)",
    "fail": "Certificate: FAIL (do not read this map as the cause)",
}


def certificate_lines(certificate: Any) -> list[str]:
    """The verdict first and in capitals, so a failed explanation never reads like a result; then why."""
    if not isinstance(certificate, Mapping) or certificate.get("verdict") not in CERTIFICATE_HEADLINES:
        return []
    lines = [CERTIFICATE_HEADLINES[certificate["verdict"]]]
    if certificate.get("reason"):
        lines.append(f"  {certificate['reason']}")
    return lines


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """Key numbers as short lines, in the order a reader wants them; unknown keys are left out."""
    lines: list[str] = certificate_lines(summary.get("certificate"))
    target = summary.get("target")
    if isinstance(target, Mapping):
        lines.append(f"Target: {target.get('label', '?')} (class {target.get('index', '?')})")
    if "method" in summary:
        lines.append(f"Method: {summary['method']}")
    if "score" in summary:
        lines.append(f"Score on the input: {_num(summary['score'])}")
    sufficient = summary.get("sufficient")
    if isinstance(sufficient, Mapping):
        parts = []
        size = (summary.get("mask_sizes") or {}).get("sufficient")
        if isinstance(size, Mapping) and "image_voxels" in size:  # on the image's voxels, as the overview counts
            unit = f"{float(size['ml']):.2f} ml" if "ml" in size else f"{float(size.get('mm2', 0)):.1f} mm²"
            parts.append(f"{int(size['image_voxels']):,} image voxels ({unit})")
        elif "voxels" in sufficient:  # an older voxcause: the search's own count, on the model's grid
            parts.append(f"{sufficient['voxels']} model voxels")
        if "fraction" in sufficient:
            parts.append(f"{100 * float(sufficient['fraction']):.2f}% of the searched box")
        if "score" in sufficient:
            parts.append(f"score {_num(sufficient['score'])}")
        lines.append("Sufficient explanation: " + ", ".join(parts))
    for key, text in (
        ("p_orig", "P(original)"),
        ("p_remove", "P(region removed)"),
        ("p_only", "P(region only)"),
        ("delta_drop", "ΔDrop"),
        ("delta_focus", "ΔFocus"),
    ):
        if key in summary:
            lines.append(f"{text}: {_num(summary[key])}")
    cost = []
    if "forward_passes" in summary:
        cost.append(f"{summary['forward_passes']} forward passes")
    if "seconds" in summary:
        cost.append(f"{_num(summary['seconds'], '.1f')} s")
    if "device" in summary:
        cost.append(f"on {summary['device']}")
    if cost:
        lines.append("Cost: " + ", ".join(cost))
    return lines


def summary_text(out_dir: str | Path) -> str:
    """Results-area text for a run folder: key numbers, then the report when present."""
    lines = summary_lines(read_summary(out_dir))
    report = read_report(out_dir)
    if report:
        lines += ["", report.strip()]
    return "\n".join(lines)
