"""Wrapping in-memory arrays and networks as the Volume / LoadedModel the explainers take."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
import torch

from ..io import Volume
from ..models import LoadedModel, ModelCard


def volume_of(array: np.ndarray, spacing: Sequence[float] | None = None) -> Volume:
    """A `Volume` holding ``array`` (C, *S), identity direction, ``spacing`` in array axis order."""
    reference = sitk.GetImageFromArray(np.zeros(array.shape[1:], np.float32))
    if spacing is not None:
        reference.SetSpacing(tuple(float(s) for s in reversed(spacing)))
    return Volume(array=np.asarray(array, np.float32), reference=reference, paths=["<memory>"])


def loaded(network: torch.nn.Module, *, batch_size: int = 16, **card) -> LoadedModel:
    """A `LoadedModel` around an eager network, with card fields given as keywords."""
    return LoadedModel(network.eval(), ModelCard(**card), network=network, device="cpu", batch_size=batch_size)


def write_nifti(
    array: np.ndarray,
    path,
    *,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    direction: Sequence[float] | None = None,
    origin: Sequence[float] | None = None,
) -> str:
    """Write a (*S) array as NIfTI with SimpleITK geometry (spacing/origin/direction in x, y, z order)."""
    image = sitk.GetImageFromArray(np.asarray(array, np.float32))
    image.SetSpacing(tuple(spacing))
    if direction is not None:
        image.SetDirection(tuple(direction))
    if origin is not None:
        image.SetOrigin(tuple(origin))
    sitk.WriteImage(image, str(path))
    return str(path)
