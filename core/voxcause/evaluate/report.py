"""Benchmark output: per-case CSV, per-method summary (CSV + Markdown), curve plots and a short verdict.

Files (each written atomically) in the output folder:
``results.csv`` (one row per case and method), ``summary.csv`` / ``summary.md`` (means over cases),
``curves_<baseline>.png`` (mean deletion and insertion curves per method, random ranking dashed),
``verdict.md`` (which method wins on what, generated from the numbers) and ``benchmark.json`` (settings).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from .benchmark import BenchmarkResult

# (column, header, higher is better?)
TABLE = [
    ("pointing_game", "pointing", True),
    ("mass_inside", "mass in", True),
    ("rank_accuracy", "rank acc", True),
    ("leakage", "leakage", False),
    ("faithfulness_corr", "faith corr", True),
    ("del_auc_constant", "del AUC const", False),
    ("ins_auc_constant", "ins AUC const", True),
    ("del_auc_blur", "del AUC blur", False),
    ("ins_auc_blur", "ins AUC blur", True),
    ("del_auc_inpaint", "del AUC inpaint", False),
    ("ins_auc_inpaint", "ins AUC inpaint", True),
    ("rob_spearman", "robust rho", True),
    ("rob_iou", "robust IoU5%", True),
    ("flat_map", "flat maps", False),
    ("sanity_abs_rho", "|rho| random model", False),
    ("seconds", "seconds", False),
    ("forward_passes", "fwd", False),
    ("backward_passes", "bwd", False),
    ("peak_mb", "peak MB", False),
]


def _mean(values: list) -> float:
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not math.isnan(float(v))]
    return float(np.mean(numbers)) if numbers else float("nan")


def summarise(rows: list[dict]) -> list[dict]:
    """Mean of every numeric column per method (over cases), methods in first-seen order, ``random`` last."""
    methods: list[str] = []
    for row in rows:
        if row["method"] not in methods:
            methods.append(row["method"])
    methods = [m for m in methods if m != "random"] + (["random"] if "random" in methods else [])
    out = []
    for method in methods:
        subset = [r for r in rows if r["method"] == method]
        keys = [k for k in subset[0] if k not in ("case", "method", "layer")]
        for r in subset[1:]:
            keys += [k for k in r if k not in keys and k not in ("case", "method", "layer")]
        summary = {"method": method, "cases": len(subset)}
        layers = sorted({str(r.get("layer", "")) for r in subset if r.get("layer")})
        if layers:
            summary["layer"] = ";".join(layers)
        for key in keys:
            summary[key] = _mean([r.get(key) for r in subset])
        out.append(summary)
    return out


def _fmt(value, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if column == "flat_map":
        return f"{value:.0%}"
    if column in ("forward_passes", "backward_passes"):
        return f"{value:.0f}"
    if column == "peak_mb":
        return f"{value:.0f}"
    if column == "seconds":
        return f"{value:.2f}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown_table(summary: list[dict]) -> str:
    """A Markdown table of the summary's columns that hold at least one number."""
    columns = [c for c in TABLE if any(c[0] in s and not _isnan(s[c[0]]) for s in summary)]
    header = "| method | " + " | ".join(h + (" ↑" if up else " ↓") for _, h, up in columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    lines = [header, rule]
    for s in summary:
        lines.append("| " + s["method"] + " | " + " | ".join(_fmt(s.get(c), c) for c, _, _ in columns) + " |")
    return "\n".join(lines) + "\n"


def _isnan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def verdict(summary: list[dict]) -> str:
    """Plain sentences naming the best method per criterion (``random`` excluded), from the numbers."""
    methods = [s for s in summary if s["method"] != "random"]
    random_row = next((s for s in summary if s["method"] == "random"), None)
    lines = []
    for column, header, up in TABLE:
        scored = [(s[column], s["method"]) for s in methods if column in s and not _isnan(s[column])]
        if len(scored) < 1:
            continue
        best_value = (max if up else min)(v for v, _ in scored)
        best = ", ".join(m for v, m in scored if abs(v - best_value) <= 1e-9 * max(1.0, abs(best_value)))
        tie = " (tie)" if "," in best else ""
        text = f"- **{header}** ({'higher' if up else 'lower'} is better): {best}{tie} ({_fmt(best_value, column)})"
        if random_row is not None and column in random_row and not _isnan(random_row[column]):
            text += f"; random ranking {_fmt(random_row[column], column)}"
        lines.append(text + ".")
    beats = []
    for s in methods:
        wins = [
            b
            for b in ("constant", "blur", "inpaint")
            if s.get(f"del_gain_{b}", 0) > 0 and s.get(f"ins_gain_{b}", 0) > 0
        ]
        beats.append(
            f"{s['method']}: beats random on deletion and insertion with {', '.join(wins) or 'no'} baseline(s)"
        )
    return (
        "\n".join(["Which method wins on what (means over cases):", "", *lines, "", *[f"- {b}." for b in beats]]) + "\n"
    )


def plot_curves(result: BenchmarkResult, path: Path, baseline: str) -> bool:
    """Mean deletion/insertion curves per method for one baseline; returns False if there is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in result.curves if k[3] == baseline]
    if not keys:
        return False
    methods = list(dict.fromkeys(k[1] for k in keys))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, kind in zip(axes, ("deletion", "insertion"), strict=True):
        for method in methods:
            curves = [result.curves[k] for k in keys if k[1] == method and k[2] == kind]
            if not curves:
                continue
            mean = np.mean([c.scores for c in curves], axis=0)
            style = {"linestyle": "--", "color": "grey"} if method == "random" else {}
            ax.plot(curves[0].fractions, mean, label=method, **style)
        ax.set_title(f"{kind} ({baseline} baseline)")
        ax.set_xlabel("fraction of voxels " + ("removed" if kind == "deletion" else "restored"))
        ax.set_ylabel("target score")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _write_csv(rows: list[dict], path: Path) -> None:
    from ..io import atomic_path

    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with atomic_path(path) as temp, open(temp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in keys})


def _write_text(text: str, path: Path) -> None:
    from ..io import atomic_path

    with atomic_path(path) as temp:
        Path(temp).write_text(text, encoding="utf-8")


def write_report(result: BenchmarkResult, out_dir: str | Path) -> dict[str, Path]:
    """Write every benchmark file into ``out_dir``; return {name: path}."""
    from ..io import atomic_path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(result.rows)
    paths = {
        "results": out / "results.csv",
        "summary_csv": out / "summary.csv",
        "summary_md": out / "summary.md",
        "verdict": out / "verdict.md",
        "settings": out / "benchmark.json",
    }
    _write_csv(result.rows, paths["results"])
    _write_csv(summary, paths["summary_csv"])
    _write_text(markdown_table(summary), paths["summary_md"])
    _write_text(verdict(summary), paths["verdict"])
    _write_text(json.dumps(result.settings, indent=2), paths["settings"])
    for baseline in result.settings.get("baselines", []):
        path = out / f"curves_{baseline}.png"
        with atomic_path(path) as temp:
            if plot_curves(result, Path(temp), baseline):
                paths[f"curves_{baseline}"] = path
    return paths
