"""Occlusion over a grid or supervoxels, batched: one forward call per batch of regions.

Each region R (a grid cell, a sliding window or a SLIC supervoxel) is replaced by the baseline in all
channels together, and the map gives every voxel of R the drop of the target's probability score:

    map(v) = mean over regions R containing v of  s(x) - s(x with R -> baseline)

(positive: hiding v lowers the score; the map is signed and never flipped). ``s`` is the class
probability, or the mean class probability inside the target region. Unlike MONAI's occlusion (one full
pass per window, sigmoid vs softmax guessed from the channel count) the masked copies go through the model
``batch_size`` at a time and the activation is the model's own. Cost: one sample per region.

Known limit, asserted in the tests: occlusion removes one region at a time, so a *disjunctive* cause (either
of two parts alone keeps the class) shows no drop anywhere — use ``rex`` for that.

Works on TorchScript/ONNX models too (no gradients needed).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..attribution import Explainer, report
from ..errors import InputError
from ..explanation import Attribution
from ..options import Options, option
from ..removal import canvas
from ..typing import Progress, Target
from .scorecam import baseline_option, batch_size_option


def grid_labels(spatial: tuple[int, ...], cell: tuple[int, ...]) -> torch.Tensor:
    """Label image (int64, *spatial) of non-overlapping cells of size ``cell`` (the last ones may be smaller)."""
    grids = torch.meshgrid(
        *[torch.arange(n) // c for n, c in zip(spatial, cell, strict=False)], indexing="ij"
    )
    counts = [math.ceil(n / c) for n, c in zip(spatial, cell, strict=False)]
    labels = torch.zeros(spatial, dtype=torch.int64)
    for g, stride in zip(grids, [math.prod(counts[i + 1 :]) for i in range(len(counts))], strict=False):
        labels += g * stride
    return labels


def supervoxel_labels(inputs: torch.Tensor, *, n_segments: int, compactness: float) -> torch.Tensor:
    """SLIC supervoxels (scikit-image) of (1, C, *s), all channels as features; labels from 0."""
    from skimage.segmentation import slic

    image = inputs[0].detach().cpu().numpy().astype(np.float64)
    image = np.moveaxis(image, 0, -1)
    low, high = image.min(), image.max()
    if high > low:
        image = (image - low) / (high - low)
    labels = slic(image, n_segments=n_segments, compactness=compactness, channel_axis=-1, start_label=0)
    _, labels = np.unique(labels, return_inverse=True)
    return torch.from_numpy(labels.reshape(image.shape[:-1]).astype(np.int64))


def _as_tuple(value: int | tuple[int, ...] | None, nd: int, default: tuple[int, ...]) -> tuple[int, ...]:
    if value is None:
        return default
    if isinstance(value, int):
        return (value,) * nd
    if len(value) != nd:
        raise InputError(
            f"cell/stride {value!r} must have {nd} entries (one per spatial axis) or be one number"
        )
    return tuple(int(v) for v in value)


@dataclass(frozen=True)
class RegionOptions(Options):
    """What is occluded and with what: shared by occlusion and the intervention half of dea."""

    regions: str = option("grid", "what is occluded: grid cells or SLIC supervoxels", choices=("grid", "supervoxels"))
    cell: int | tuple[int, ...] | None = option(
        None, "grid cell size in voxels, one number or one per axis (default: size / 8)", kind="ints", minimum=1)
    n_segments: int = option(256, "supervoxels: about this many SLIC regions", minimum=1)
    compactness: float = option(0.1, "supervoxels: SLIC compactness", minimum=0.0)
    baseline: str | float = baseline_option()
    batch_size: int = batch_size_option()


@dataclass(frozen=True)
class OcclusionOptions(RegionOptions):
    stride: int | tuple[int, ...] | None = option(
        None, "window step (default = cell: non-overlapping); smaller slides overlapping windows", kind="ints",
        minimum=1)


class Occlusion(Explainer):
    """Occlusion sensitivity over regions.

    Args:
        model: any model (``LoadedModel``, TorchScript/ONNX included, or ``nn.Module``).
        regions: ``"grid"`` (default) or ``"supervoxels"`` (SLIC).
        cell: grid cell size in voxels, one number or one per axis; default ceil(size / 8) per axis.
        stride: window step; default = cell (non-overlapping, each voxel in one region). A smaller stride
            slides overlapping windows and averages, at (cell/stride)^nd times the cost.
        n_segments, compactness: SLIC settings for ``"supervoxels"``.
        baseline: ``"zero"`` (default), ``"constant"``, ``"blur"``, ``"mean"``, ``"min"`` or a number.
        batch_size: occluded copies per forward call (memory: batch_size x input size).
    """

    name = "occlusion"
    options = OcclusionOptions

    def _score(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        with torch.no_grad():
            return target.score(self.model.predict(x)).float().cpu()

    def region_masks(self, inputs: torch.Tensor) -> tuple[list, torch.Tensor | None, dict]:
        """The regions to occlude: (list of slices or label ids, label image or None, info)."""
        spatial = tuple(inputs.shape[2:])
        nd = len(spatial)
        if self.regions == "supervoxels":
            labels = supervoxel_labels(inputs, n_segments=self.n_segments, compactness=self.compactness)
            ids = list(range(int(labels.max()) + 1))
            return ids, labels, {"regions": "supervoxels", "n_regions": len(ids)}
        cell = _as_tuple(self.cell, nd, tuple(max(1, math.ceil(n / 8)) for n in spatial))
        stride = _as_tuple(self.stride, nd, cell)
        if stride == cell:
            labels = grid_labels(spatial, cell)
            ids = list(range(int(labels.max()) + 1))
            return ids, labels, {"regions": "grid", "cell": list(cell), "n_regions": len(ids)}
        starts = [
            list(range(0, max(n - c, 0) + 1, s)) for n, c, s in zip(spatial, cell, stride, strict=False)
        ]
        for axis, (n, c) in enumerate(zip(spatial, cell, strict=False)):
            if starts[axis][-1] + c < n:
                starts[axis].append(max(n - c, 0))
        windows = [
            tuple(slice(a, a + c) for a, c in zip(corner, cell, strict=False))
            for corner in itertools.product(*starts)
        ]
        info = {"regions": "sliding", "cell": list(cell), "stride": list(stride), "n_regions": len(windows)}
        return windows, None, info

    def _attribute(self, inputs: torch.Tensor, target: Target, progress: Progress | None) -> Attribution:
        """A signed (*spatial) map: the score drop when the voxel's region is occluded."""
        spatial = tuple(inputs.shape[2:])
        regions, labels, info = self.region_masks(inputs)
        baseline = canvas(inputs, self.baseline)
        original = float(self._score(inputs, target)[0])
        total = torch.zeros(spatial)
        counts = torch.zeros(spatial)
        device = inputs.device
        for i in range(0, len(regions), self.batch_size):
            chunk = regions[i : i + self.batch_size]
            if labels is not None:
                ids = torch.as_tensor(chunk)
                masks = labels.unsqueeze(0) == ids.view(-1, *([1] * len(spatial)))
            else:
                masks = torch.zeros((len(chunk), *spatial), dtype=torch.bool)
                for j, window in enumerate(chunk):
                    masks[(j, *window)] = True
            m = masks.unsqueeze(1).to(device)
            batch = torch.where(m, baseline, inputs)
            drops = original - self._score(batch, target)
            masks_f = masks.float()
            total += (masks_f * drops.view(-1, *([1] * len(spatial)))).sum(0)
            counts += masks_f.sum(0)
            report(progress, "occlusion: occluded copies", (i + len(chunk)) / len(regions))
        attribution = torch.where(counts > 0, total / counts.clamp(min=1), torch.zeros_like(total))
        stats = {
            **info,
            "baseline": str(self.baseline),
            "score": original,
            "forward_calls": 1 + math.ceil(len(regions) / self.batch_size),
        }
        details = {"method": self.name}
        if labels is not None:
            details["labels"] = labels
        return Attribution(map=attribution.float(), masks={}, stats=stats, details=details)
