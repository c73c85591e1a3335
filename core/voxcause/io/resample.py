"""Bringing a mask from another grid onto an image's voxels (physical-space resampling)."""

from __future__ import annotations

import os

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .images import Volume, _read_one


def _physical_bounds(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    size = np.array(image.GetSize()) - 1
    corners = np.array(np.meshgrid(*[[0, s] for s in size], indexing="ij")).reshape(len(size), -1).T
    points = np.array([image.TransformContinuousIndexToPhysicalPoint(c.tolist()) for c in corners.astype(float)])
    return points.min(axis=0), points.max(axis=0)


def resample_mask(mask_image: sitk.Image, volume: Volume) -> np.ndarray:
    """Nearest-neighbour resample ``mask_image`` onto ``volume``'s grid; error if they do not overlap physically."""
    reference = volume.reference
    if mask_image.GetDimension() != reference.GetDimension():
        raise InputError(
            f"mask is {mask_image.GetDimension()}D but the image is {reference.GetDimension()}D — "
            "pass a mask of the image's dimension"
        )
    if mask_image.GetNumberOfComponentsPerPixel() > 1:
        mask_image = sitk.VectorIndexSelectionCast(mask_image, 0)
    same_grid = (
        mask_image.GetSize() == reference.GetSize()
        and np.allclose(mask_image.GetSpacing(), reference.GetSpacing(), atol=1e-4)
        and np.allclose(mask_image.GetOrigin(), reference.GetOrigin(), atol=1e-3)
        and np.allclose(mask_image.GetDirection(), reference.GetDirection(), atol=1e-4)
    )
    if same_grid:
        return sitk.GetArrayFromImage(mask_image) > 0
    low_a, high_a = _physical_bounds(mask_image)
    low_b, high_b = _physical_bounds(reference)
    if np.any(high_a < low_b) or np.any(high_b < low_a):
        raise InputError(
            "mask and image do not overlap in physical space — check the mask's origin/direction "
            "or pass the mask written for this image"
        )
    resampled = sitk.Resample(
        sitk.Cast(mask_image > 0, sitk.sitkUInt8),
        reference,
        sitk.Transform(),
        sitk.sitkNearestNeighbor,
        0,
        sitk.sitkUInt8,
    )
    return sitk.GetArrayFromImage(resampled) > 0


def read_mask_like(path: str | os.PathLike, volume: Volume) -> np.ndarray:
    """Read a mask file (any grid that overlaps the image physically) as a bool array on ``volume``'s grid."""
    return resample_mask(_read_one(path)[0], volume)
