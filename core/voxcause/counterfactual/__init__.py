"""Mask-guided counterfactuals: remove a region (3D inpainting), keep only the region, measure ΔDrop / ΔFocus.

* `remove_region` (inpaint.py): harmonic 3D infill with matched noise, slice-wise Navier-Stokes / Telea,
  fill from a healthy volume, constant.
* `keep_region` (region_only.py): the region alone on a constant / minimum / mean / blurred baseline.
* `counterfactual` (case.py): one image + model + region -> scores, images, ``save(out_dir)``.
* `run_manifest` (dataset.py): a manifest of cases -> per-case CSV, per-class and correct-vs-misclassified
  tables, a distribution plot.
* masks.py: the region from a file (any overlapping grid), a segmenter, or an explanation.
"""

from .case import Counterfactual, counterfactual, resolve_region
from .dataset import DatasetResult, run_manifest
from .inpaint import Infill, remove_region
from .masks import mask_from_explanation, mask_from_file, mask_from_segmenter
from .metrics import CounterfactualScores, deltas, score_variants
from .region_only import keep_region

__all__ = [
    "Counterfactual", "CounterfactualScores", "DatasetResult", "Infill", "counterfactual", "deltas", "keep_region",
    "mask_from_explanation", "mask_from_file", "mask_from_segmenter", "remove_region", "resolve_region",
    "run_manifest", "score_variants",
]
