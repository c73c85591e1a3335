"""Moving arrays between the image grid and the model's grid.

A model trained on a fixed ``spatial_size`` sees the image resized (trilinear, ``align_corners=False``, as
MONAI's ``Resize``) or centre-cropped/padded to that size. Every map computed in the model's grid goes back
through the inverse of the same step, so maps and masks land on the input's voxels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def _interpolation_mode(spatial_dims: int, order: int) -> str:
    if order == 0:
        return "nearest"
    return "trilinear" if spatial_dims == 3 else "bilinear"


def resize(tensor: torch.Tensor, size: Sequence[int], *, order: int = 1) -> torch.Tensor:
    """Resize a (B, C, *spatial) tensor to ``size`` (order 1: linear, 0: nearest)."""
    size = tuple(int(s) for s in size)
    if tuple(tensor.shape[2:]) == size:
        return tensor
    mode = _interpolation_mode(len(size), order)
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    return F.interpolate(tensor, size=size, mode=mode, **kwargs)


def crop_or_pad(tensor: torch.Tensor, size: Sequence[int], *, value: float = 0.0) -> torch.Tensor:
    """Centre-crop or zero-pad a (B, C, *spatial) tensor to ``size``."""
    out = tensor
    for axis, target in enumerate(size, start=2):
        current = out.shape[axis]
        if current > target:
            start = (current - target) // 2
            out = out.narrow(axis, start, target)
        elif current < target:
            before = (target - current) // 2
            pad_shape = list(out.shape)
            pad_shape[axis] = before
            after_shape = list(out.shape)
            after_shape[axis] = target - current - before
            out = torch.cat([out.new_full(pad_shape, value), out, out.new_full(after_shape, value)], dim=axis)
    return out


def to_model_grid(array: np.ndarray, size: Sequence[int] | None, mode: str, *, order: int = 1) -> torch.Tensor:
    """(C, *spatial) image array -> (1, C, *size) tensor in the model's grid."""
    tensor = torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32)[None]
    if size is None:
        return tensor
    return resize(tensor, size, order=order) if mode == "resize" else crop_or_pad(tensor, size)


def to_image_grid(
    values: torch.Tensor | np.ndarray, image_shape: Sequence[int], mode: str, *, order: int = 1
) -> np.ndarray:
    """(*model_spatial) map -> (*image_shape) numpy array on the image's voxels (inverse of `to_model_grid`)."""
    tensor = torch.as_tensor(values).detach().float().cpu()[None, None]
    if tuple(tensor.shape[2:]) != tuple(image_shape):
        tensor = resize(tensor, image_shape, order=order) if mode == "resize" else crop_or_pad(tensor, image_shape)
    return tensor[0, 0].numpy()
