"""The options of the causal search (method ``rex``), declared once (see `voxcause.options`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..attribution import OCCLUSIONS
from ..options import Options, option, seed_option
from .responsibility import MERGES, RULES

EXPLANATIONS = ("sufficient", "contrastive", "multiple")


@dataclass(frozen=True)
class RexOptions(Options):
    iterations: int = option(10, "random partitions to merge; more = smoother map, proportionally more forward "
                             "passes", minimum=1, maximum=500)
    rule: str = option("rex", "responsibility rule", choices=RULES)
    merge: str = option("multiplicative", "merging over iterations", choices=MERGES)
    occlusion: str = option("auto", "what an occluded voxel becomes", choices=OCCLUSIONS)
    occlusion_value: float = option(0.0, "value for occlusion 'constant'")
    context: torch.Tensor | None = option(None, "a healthy volume (model grid) for occlusion 'context'", supplied=True)
    min_part_voxels: int | None = option(None, "parts smaller than this are not split further", kind="int", minimum=1)
    max_jobs: int = option(2, "boxes an iteration refines per level", minimum=1)
    explanations: tuple[str, ...] = option(EXPLANATIONS, "which explanations to extract", choices=EXPLANATIONS)
    max_explanations: int = option(3, "at most this many disjoint sufficient explanations", minimum=1)
    seed: int = seed_option()
    spacing: tuple[float, ...] | None = option(None, "physical voxel size on the model grid", supplied=True)
