"""Faithfulness benchmark: metrics on maps, deletion/insertion curves, robustness, runtime, reports."""

from .benchmark import BenchmarkResult, Case, run_benchmark
from .curves import Curve, curves_for, perturbation_curve, random_reference, ranking
from .metrics import (
    auc,
    faithfulness_correlation,
    off_target_leakage,
    pointing_game,
    relevance_mass,
    relevance_rank_accuracy,
    spearman,
    top_fraction_iou,
)
from .report import markdown_table, summarise, write_report

__all__ = [
    "BenchmarkResult",
    "Case",
    "Curve",
    "auc",
    "curves_for",
    "faithfulness_correlation",
    "markdown_table",
    "off_target_leakage",
    "perturbation_curve",
    "pointing_game",
    "random_reference",
    "ranking",
    "relevance_mass",
    "relevance_rank_accuracy",
    "run_benchmark",
    "spearman",
    "summarise",
    "top_fraction_iou",
    "write_report",
]
