"""Slicer segmentations (``.seg.nrrd``) with named, coloured segments, written through slicerio.

Segments may overlap (a sufficient explanation lies inside the top responsibility levels), so each
segment gets its own layer when needed; Slicer, slicerio and ITK-SNAP (first layer) read the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import slicerio

from .atomic import atomic_path
from .images import PathLike, Volume

Segment = tuple[str, np.ndarray, tuple[float, float, float]]


def _ijk_to_lps(geometry: sitk.Image) -> np.ndarray:
    """4x4 matrix from voxel (i, j, k) to LPS millimetres; 2D images get a unit third axis."""
    dims = geometry.GetDimension()
    direction = np.eye(3)
    direction[:dims, :dims] = np.array(geometry.GetDirection()).reshape(dims, dims)
    spacing = np.ones(3)
    spacing[:dims] = geometry.GetSpacing()
    origin = np.zeros(3)
    origin[:dims] = geometry.GetOrigin()
    matrix = np.eye(4)
    matrix[:3, :3] = direction * spacing
    matrix[:3, 3] = origin
    return matrix


def _layers(masks: Sequence[np.ndarray]) -> list[list[int]]:
    """Greedy assignment of segments to layers so segments within a layer never overlap."""
    layers: list[list[int]] = []
    occupied: list[np.ndarray] = []
    for index, mask in enumerate(masks):
        for layer, used in zip(layers, occupied, strict=True):
            if not (used & mask).any():
                layer.append(index)
                used |= mask
                break
        else:
            layers.append([index])
            occupied.append(mask.copy())
    return layers


def write_segmentation(path: PathLike, segments: Sequence[Segment], reference: Volume | sitk.Image, *,
                       compress: bool = True) -> Path:
    """Write named, coloured binary masks (each (*spatial), the reference's grid) as a Slicer ``.seg.nrrd``.

    Args:
        path: output file, conventionally ending in ``.seg.nrrd``.
        segments: ``(name, mask, (r, g, b))`` with colour components in 0..1.
        reference: the image whose geometry the masks share.
        compress: gzip the voxels (default); False writes them raw, for readers without gzip (OHIF's MONAI Label
            panel asks for that with ``result_compress: false``).
    """
    geometry = reference.reference if isinstance(reference, Volume) else reference
    masks = [np.asarray(mask, dtype=bool) for _, mask, _ in segments]
    if geometry.GetDimension() == 2:
        masks = [mask[None] for mask in masks]
    layers = _layers(masks)
    # slicerio expects voxels indexed (i, j, k) = (x, y, z): transpose from numpy's (z, y, x).
    shape_ijk = (
        tuple(reversed(masks[0].shape)) if masks else tuple(geometry.GetSize()) + (1,) * (3 - geometry.GetDimension())
    )
    voxels = np.zeros((len(layers), *shape_ijk) if len(layers) > 1 else shape_ijk, dtype=np.uint8)
    descriptions = []
    for layer_index, members in enumerate(layers):
        target = voxels[layer_index] if len(layers) > 1 else voxels
        for label, segment_index in enumerate(members, start=1):
            target[masks[segment_index].transpose()] = label
            name, _, colour = segments[segment_index]
            descriptions.append(
                {
                    "id": f"Segment_{segment_index + 1}",
                    "name": name,
                    "labelValue": label,
                    "layer": layer_index,
                    "color": [float(c) for c in colour],
                }
            )
    descriptions.sort(key=lambda item: int(item["id"].split("_")[1]))
    segmentation = {"voxels": voxels, "ijkToLPS": _ijk_to_lps(geometry), "encoding": "gzip" if compress else "raw",
                    "segments": descriptions}
    with atomic_path(path) as temp:
        slicerio.write_segmentation(str(temp), segmentation)
    return Path(path)
