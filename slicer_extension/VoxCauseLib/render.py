"""Headless render of Slicer's slice pipeline to PNG.

What it is, exactly: `vtkMRMLSliceLogic`, the class that computes every slice view in Slicer, reslices the
background, foreground and label layers through a slice node and blends them with the display nodes' colour
tables, window/level, threshold and the composite node's opacities. Its blended RGBA image is what a slice
view paints before the displayable managers draw on top. Segmentations are drawn by a displayable manager in
the GUI; here the chosen segments are exported to a temporary label volume and drawn as the label layer with
outlines, which is how Slicer draws label maps. Cursor, annotations and anti-aliased segment contours are
therefore absent. No window and no OpenGL is needed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import mrml

ORIENTATIONS = ("Axial", "Coronal", "Sagittal")


def render_png(
    scene: Any,
    path: str | os.PathLike[str],
    *,
    background: Any,
    foreground: Any = None,
    opacity: float = 0.6,
    segmentation: Any = None,
    segment_ids: Sequence[str] | None = None,
    center_ras: Sequence[float] | None = None,
    orientations: Sequence[str] = ORIENTATIONS,
    size: int = 256,
) -> Path:
    """Render one slice per orientation through `center_ras` side by side into `path`; returns the path.

    Nodes created for the render are removed again; the scene is unchanged afterwards.
    """
    import numpy as np
    from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
    from vtkmodules.vtkCommonCore import vtkStringArray
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkIOImage import vtkPNGWriter

    slicer = mrml.mrml_module()
    mrml.ensure_default_colors(scene, mrml=slicer)
    before = mrml.node_ids(scene)
    tiles = []
    try:
        label = None
        if segmentation is not None:
            label = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "voxcause render labels")
            ids = vtkStringArray()
            for segment_id in segment_ids or []:
                ids.InsertNextValue(segment_id)
            logic = slicer.vtkSlicerSegmentationsModuleLogic
            if not logic.ExportSegmentsToLabelmapNode(segmentation, ids, label, background):
                raise ValueError("Cannot draw the segments: they do not overlap the background volume.")
            label.CreateDefaultDisplayNodes()
            label.GetDisplayNode().SetAndObserveColorNodeID(label.GetDisplayNode().GetColorNodeID())
        mrml.ensure_orientation_presets(scene, mrml=slicer)
        for index, orientation in enumerate(orientations):
            logic = slicer.vtkMRMLSliceLogic()
            logic.SetMRMLScene(scene)
            slice_node = logic.AddSliceNode(f"VoxCauseRender{index}")
            slice_node.SetOrientation(orientation)
            slice_node.SetDimensions(size, size, 1)
            slice_node.SetUseLabelOutline(True)
            composite = logic.GetSliceCompositeNode()
            composite.SetBackgroundVolumeID(background.GetID())
            composite.SetForegroundVolumeID(foreground.GetID() if foreground is not None else None)
            composite.SetForegroundOpacity(opacity)
            composite.SetLabelVolumeID(label.GetID() if label is not None else None)
            composite.SetLabelOpacity(1.0)
            logic.FitSliceToAll()
            if center_ras is not None:
                slice_node.JumpSliceByCentering(*[float(v) for v in center_ras])
            output = logic.GetImageDataConnection()
            output.GetProducer().Update()
            image = output.GetProducer().GetOutputDataObject(output.GetIndex())
            width, height, _ = image.GetDimensions()
            rgba = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, -1)
            tiles.append(rgba[..., :3].copy())
            logic.SetMRMLScene(None)
    finally:
        for node_id in mrml.node_ids(scene) - before:
            node = scene.GetNodeByID(node_id)
            if node is not None:
                scene.RemoveNode(node)
    gap = np.zeros((tiles[0].shape[0], 4, 3), dtype=np.uint8)
    strip = np.concatenate([t if i == 0 else np.concatenate([gap, t], axis=1) for i, t in enumerate(tiles)], axis=1)
    out = vtkImageData()
    out.SetDimensions(strip.shape[1], strip.shape[0], 1)
    scalars = numpy_to_vtk(np.ascontiguousarray(strip.reshape(-1, 3)), deep=True)
    scalars.SetNumberOfComponents(3)
    out.GetPointData().SetScalars(scalars)
    path = Path(path)
    writer = vtkPNGWriter()
    writer.SetFileName(os.fspath(path))
    writer.SetInputData(out)
    writer.Write()
    return path
