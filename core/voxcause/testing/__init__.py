"""Known-cause models and volumes for checking explainers (used by the tests and benchmarks)."""

from .known_cause import EdgeReader, KnownCase, KnownCauseNet, SpotDetector, ball, cube, make_case, make_edge_case
from .wrapping import loaded, volume_of, write_nifti

__all__ = [
    "EdgeReader",
    "KnownCase",
    "KnownCauseNet",
    "SpotDetector",
    "ball",
    "cube",
    "loaded",
    "make_case",
    "make_edge_case",
    "volume_of",
    "write_nifti",
]
