"""Known-cause models and volumes for checking explainers (used by the tests and benchmarks)."""

from .conv_cause import CauseClassifier, CauseSegmenter, class_target, make_conv_case, region_target
from .instance_unet import NETWORK, WHOLE_CARD, WINDOWED_CARD, make_volume, region_case
from .known_cause import EdgeReader, KnownCase, KnownCauseNet, SpotDetector, ball, cube, make_case, make_edge_case
from .metrics import positive_share
from .multi_cause import LabelSpots, MultiCase, make_multi_case
from .wrapping import loaded, volume_of, write_nifti

__all__ = [
    "CauseClassifier",
    "CauseSegmenter",
    "EdgeReader",
    "KnownCase",
    "KnownCauseNet",
    "LabelSpots",
    "MultiCase",
    "NETWORK",
    "SpotDetector",
    "WHOLE_CARD",
    "WINDOWED_CARD",
    "ball",
    "class_target",
    "cube",
    "loaded",
    "make_case",
    "make_conv_case",
    "make_edge_case",
    "make_multi_case",
    "make_volume",
    "region_case",
    "positive_share",
    "region_target",
    "volume_of",
    "write_nifti",
]
