"""Infer tasks: the segmenter, the explainers and the counterfactual test, each calling the voxcause core."""

from .counterfactual import CounterfactualTask
from .explain import ExplainTask
from .probability import ProbabilityTask
from .segmentation import SegmentationTask

__all__ = ["CounterfactualTask", "ExplainTask", "ProbabilityTask", "SegmentationTask"]
