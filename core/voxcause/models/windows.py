"""Sliding-window prediction restricted to a box: only the windows that overlap it are run and stitched.

A patch-trained segmenter's output at a voxel is the weighted mean of the windows that contain it; windows
that do not overlap a box contribute nothing to any voxel inside it. So a target that reads the output only
inside its region (`voxcause.targets.RegionTarget`) needs only the windows overlapping the region's bounding
box, and an accumulation buffer the size of that box: exact, not an approximation. A mutant then costs the
windows around the region instead of every window of the image (27 windows -> 1 for a region in one corner
of a 3x3x3 layout), and no image-sized float32 buffer is filled per mutant.

The window layouts are the libraries' own: MONAI's ``sliding_window_inference`` (`monai_layout`: its padding of
images smaller than the window, scan interval, ``dense_patch_slices`` and importance map) and nnU-Net's
predictor (`voxcause.models.nnunet` passes its slicers and Gaussian). `stitch` does the restricted sum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

Slices = tuple[slice, ...]


@dataclass(frozen=True)
class WindowLayout:
    """Where the windows of one image lie: ``pad`` is the constant padding before each spatial axis (MONAI
    pads images smaller than a window), ``padded`` the padded spatial shape, ``windows`` the spatial slices of
    each window in padded coordinates, ``weight`` the (*roi) blending weights."""

    pad: tuple[int, ...]
    padded: tuple[int, ...]
    windows: list[Slices]
    weight: torch.Tensor


def monai_layout(
    shape: Sequence[int], roi_size: Sequence[int], overlap: float, mode: str, device: torch.device, dtype: torch.dtype
) -> WindowLayout:
    """The windows `monai.inferers.sliding_window_inference` visits on an image of spatial ``shape``."""
    from monai.data.utils import compute_importance_map, dense_patch_slices, get_valid_patch_size
    from monai.inferers.utils import _get_scan_interval

    dims = len(shape)
    roi = tuple(int(r) for r in roi_size)
    pad = tuple(max(r - s, 0) // 2 for r, s in zip(roi, shape, strict=True))
    padded = tuple(max(s, r) for s, r in zip(shape, roi, strict=True))
    interval = _get_scan_interval(padded, roi, dims, (overlap,) * dims)
    windows = dense_patch_slices(padded, roi, interval)
    valid = get_valid_patch_size(padded, roi)
    weight = compute_importance_map(valid, mode=mode, sigma_scale=0.125, device=device, dtype=dtype)
    return WindowLayout(pad, padded, windows, weight)


def pad_like_monai(inputs: torch.Tensor, layout: WindowLayout) -> torch.Tensor:
    """(B, C, *S) -> (B, C, *padded): constant-0 padding as ``sliding_window_inference`` applies it."""
    if not any(layout.pad):
        return inputs
    pads: list[int] = []
    for size, before, padded in reversed(list(zip(inputs.shape[2:], layout.pad, layout.padded, strict=True))):
        pads.extend([before, padded - size - before])
    return torch.nn.functional.pad(inputs, pads, mode="constant", value=0.0)


def overlapping(windows: Sequence[Slices], box: Slices) -> list[Slices]:
    """The windows that share at least one voxel with ``box`` (all in the same coordinates)."""
    return [
        window for window in windows
        if all(w.start < b.stop and b.start < w.stop for w, b in zip(window, box, strict=True))
    ]


def stitch(
    data: torch.Tensor,
    windows: Sequence[Slices],
    weight: torch.Tensor,
    box: Slices,
    run: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """The weighted mean of ``run`` over the ``windows`` of ``data`` (B, C, *S), inside ``box`` only.

    ``run`` maps a (B, C, *roi) window to (B, K, *roi) outputs; only windows overlapping ``box`` are run, and
    the sums are kept in (B, K, *box) float32 buffers. Returns (B, K, *box), equal to the full stitched output
    cropped to ``box`` (up to the order of float additions).
    """
    shape = tuple(s.stop - s.start for s in box)
    total: torch.Tensor | None = None
    weights = torch.zeros(shape, dtype=torch.float32, device=data.device)
    for window in overlapping(windows, box):
        lo = [max(w.start, b.start) for w, b in zip(window, box, strict=True)]
        hi = [min(w.stop, b.stop) for w, b in zip(window, box, strict=True)]
        source = tuple(slice(a - w.start, z - w.start) for a, z, w in zip(lo, hi, window, strict=True))
        target = tuple(slice(a - b.start, z - b.start) for a, z, b in zip(lo, hi, box, strict=True))
        output = run(data[(slice(None), slice(None), *window)]).float()
        if total is None:
            total = torch.zeros((data.shape[0], output.shape[1], *shape), dtype=torch.float32, device=data.device)
        part = weight[source].float()
        total[(slice(None), slice(None), *target)] += output[(slice(None), slice(None), *source)] * part
        weights[target] += part
    if total is None:
        raise ValueError("no window overlaps the box")
    return total / weights


def shifted(box: Slices, offsets: Sequence[int]) -> Slices:
    """``box`` moved by ``offsets`` (image coordinates -> padded coordinates)."""
    return tuple(slice(s.start + o, s.stop + o) for s, o in zip(box, offsets, strict=True))


def reach(windows: Sequence[Slices], box: Slices, offsets: Sequence[int], shape: Sequence[int]) -> Slices:
    """The image voxels that can change the output inside ``box``: the union of the windows overlapping it
    (padded coordinates, ``offsets`` the padding before each axis), clipped to the image of spatial ``shape``."""
    near = overlapping(windows, shifted(box, offsets))
    lo = [max(0, int(min(w[d].start for w in near)) - offsets[d]) for d in range(len(box))]
    hi = [min(int(shape[d]), int(max(w[d].stop for w in near)) - offsets[d]) for d in range(len(box))]
    return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
