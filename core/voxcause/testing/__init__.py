"""Known-cause models and volumes for checking explainers (used by the tests and benchmarks)."""

from .known_cause import KnownCase, KnownCauseNet, SpotDetector, ball, cube, make_case
from .wrapping import loaded, volume_of, write_nifti

__all__ = [
    "KnownCase",
    "KnownCauseNet",
    "SpotDetector",
    "ball",
    "cube",
    "loaded",
    "make_case",
    "volume_of",
    "write_nifti",
]
