"""Fused explanations: ``DualEvidence`` (``dea``) combines Seg-Grad-CAM with occlusion for segmentation."""

from .dea import DualEvidence

__all__ = ["DualEvidence"]
