"""Gradient and occlusion saliency for 2D/3D classifiers and segmenters.

One explainer per module, all with ``Explainer(model, **options).attribute(inputs, *, target, progress)``:
``GradCAM``, ``SegGradCAM``, ``GradCAMPlusPlus``, ``ScoreCAM`` (need an eager network) and ``Occlusion``
(any model). Maps are on the model grid, higher = more responsible, never flipped.
"""

from .gradcam import GradCAM, SegGradCAM
from .gradcampp import GradCAMPlusPlus
from .occlusion import Occlusion
from .scorecam import ScoreCAM

__all__ = ["GradCAM", "GradCAMPlusPlus", "Occlusion", "ScoreCAM", "SegGradCAM"]
