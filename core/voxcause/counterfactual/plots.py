"""The dataset plot: per-class distributions of ΔDrop and ΔFocus, as a figure for a paper.

Two panels side by side (ΔDrop = P_orig − P_remove, ΔFocus = P_only), one box per true class with every
case drawn over it (jittered; filled = correctly classified, open red = misclassified), n under each class,
a zero line for ΔDrop. Written as a 300 dpi PNG and a vector PDF beside it, 7.2 in wide (a two-column
figure), 8-9 pt type, colour-blind-safe colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..io.atomic import atomic_path  # noqa: E402

_CORRECT = "#0072B2"
_WRONG = "#D55E00"


def plot_distributions(path: str | Path, rows: list[dict[str, Any]], *, order: Sequence[str] | None = None,
                       seed: int = 0) -> Path:
    """Write ``path`` (PNG) and the same figure as PDF from successful case ``rows`` (see dataset.py)."""
    ok = [r for r in rows if r["status"] == "ok"]
    classes = [c for c in (order or []) if any(str(r["label"]) == c for r in ok)]
    classes += sorted({str(r["label"]) for r in ok} - set(classes))
    rng = np.random.default_rng(seed)
    with plt.rc_context({"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8.5, "xtick.labelsize": 8,
                         "ytick.labelsize": 8, "legend.fontsize": 7.5, "axes.spines.top": False,
                         "axes.spines.right": False, "pdf.fonttype": 42}):
        figure, axes = plt.subplots(1, 2, figsize=(7.2, 2.9), constrained_layout=True)
        panels = [("delta_drop", "ΔDrop = P$_{orig}$ − P$_{remove}$", (-1.02, 1.02)),
                  ("delta_focus", "ΔFocus = P$_{only}$", (-0.02, 1.02))]
        for axis, (key, title, limits) in zip(axes, panels, strict=True):
            data = [[r[key] for r in ok if str(r["label"]) == c] for c in classes]
            positions = np.arange(1, len(classes) + 1)
            axis.boxplot(data, positions=positions, widths=0.55, showfliers=False, patch_artist=True,
                         medianprops={"color": "black", "linewidth": 1.2},
                         boxprops={"facecolor": "#E8E8E8", "edgecolor": "#555555", "linewidth": 0.8},
                         whiskerprops={"color": "#555555", "linewidth": 0.8},
                         capprops={"color": "#555555", "linewidth": 0.8})
            for position, cls in zip(positions, classes, strict=True):
                members = [r for r in ok if str(r["label"]) == cls]
                jitter = rng.uniform(-0.16, 0.16, len(members))
                for offset, member in zip(jitter, members, strict=True):
                    correct = bool(member["correct"])
                    axis.scatter(position + offset, member[key], s=14, zorder=3, linewidths=0.8,
                                 facecolors=_CORRECT if correct else "none", edgecolors=_CORRECT if correct else _WRONG,
                                 alpha=0.85)
            if key == "delta_drop":
                axis.axhline(0.0, color="#999999", linewidth=0.6, linestyle="--", zorder=0)
            axis.set_xticks(positions)
            axis.set_xticklabels([f"{c}\n(n={len(d)})" for c, d in zip(classes, data, strict=True)])
            axis.set_ylim(*limits)
            axis.set_title(title)
            axis.set_xlabel("true class")
        axes[0].set_ylabel("change in target probability")
        axes[1].set_ylabel("target probability, region only")
        handles = [plt.Line2D([], [], marker="o", linestyle="", markerfacecolor=_CORRECT, markeredgecolor=_CORRECT,
                              label="correctly classified"),
                   plt.Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor=_WRONG,
                              label="misclassified")]
        axes[1].legend(handles=handles, loc="best", frameon=False)
        target = Path(path)
        with atomic_path(target) as temp:
            figure.savefig(temp, dpi=300, format="png")
        with atomic_path(target.with_suffix(".pdf")) as temp:
            figure.savefig(temp, format="pdf")
        plt.close(figure)
    return target
