"""Shared fixtures of the core tests: known-cause cases as files and as in-memory volumes."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch


def write_nifti(array: np.ndarray, path, *, spacing=(1.0, 1.0, 1.0), direction=None, origin=None) -> str:
    image = sitk.GetImageFromArray(array.astype(np.float32))
    image.SetSpacing(spacing)
    if direction is not None:
        image.SetDirection(direction)
    if origin is not None:
        image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))
    return str(path)


@pytest.fixture(autouse=True)
def _one_thread():
    """Results must not depend on thread scheduling; one thread also keeps parallel CI jobs fair."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
