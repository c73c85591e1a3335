"""Put results into an MRML scene and show them, with plain MRML only (no GUI, no `slicer.util`).

Why plain MRML: the same functions then run inside Slicer (where `slicer` is the application's module) and
in a test or a script with the `slicer-core` wheel (where `slicer` is the MRML library alone), so the
node handling is tested against real MRML. Every function takes the scene explicitly; none uses
`slicer.mrmlScene` or `slicer.app`.

Geometry: files are read by Slicer's own storage nodes, which convert the files' LPS geometry to Slicer's
RAS, exactly as loading them in Slicer does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from . import display

MAP_FILE = "map.nii.gz"
EXPLANATION_FILE = "explanation.seg.nrrd"
PREDICTION_FILE = "prediction.seg.nrrd"
#: The model's own per-voxel outputs (voxcause.probability): file -> (node name suffix, Slicer colour table).
MODEL_MAPS = {"probability.nii.gz": ("model probability", "vtkMRMLColorTableNodeRainbow"),
              "uncertainty.nii.gz": ("model uncertainty (SD across folds)", "vtkMRMLColorTableNodeWarm1")}
REMOVED_FILE = "removed.nii.gz"
ONLY_FILE = "only.nii.gz"
VIEWS = ("Red", "Yellow", "Green")


def mrml_module() -> ModuleType:
    """The module holding the vtkMRML classes: Slicer's `slicer` (in Slicer or from slicer-core)."""
    import slicer

    return slicer


def _new(class_name: str, mrml: ModuleType | None = None) -> Any:
    return getattr(mrml or mrml_module(), class_name)()


@dataclasses.dataclass
class ResultNodes:
    """The nodes one run added; `all()` lists them for removal."""

    map: Any = None
    explanation: Any = None
    prediction: Any = None
    removed: Any = None
    only: Any = None
    color_table: Any = None
    probability: Any = None
    uncertainty: Any = None

    def all(self) -> list[Any]:
        """Every data node held (the colour table is shared between runs and not listed)."""
        held = (self.map, self.explanation, self.prediction, self.removed, self.only, self.probability,
                self.uncertainty)
        return [n for n in held if n is not None]


def node_ids(scene: Any) -> set[str]:
    """IDs of every node in the scene (to compare before and after)."""
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


@contextlib.contextmanager
def no_stray_nodes(scene: Any) -> Iterator[None]:
    """Remove every node added inside the block when the block raises, so a failure leaves the scene as it was."""
    before = node_ids(scene)
    try:
        yield
    except BaseException:
        for node_id in node_ids(scene) - before:
            node = scene.GetNodeByID(node_id)
            if node is not None:
                scene.RemoveNode(node)
        raise


def ensure_default_colors(scene: Any, *, mrml: ModuleType | None = None) -> None:
    """Slicer's default colour tables (Grey for images, Labels for label maps), which a bare scene lacks.

    The colour logic is detached again before it is dropped: a vtkMRMLColorLogic destroyed while attached
    removes the tables it added.
    """
    if scene.GetNodeByID("vtkMRMLColorTableNodeGrey") is not None:
        return
    logic = (mrml or mrml_module()).vtkMRMLColorLogic()
    logic.SetMRMLScene(scene)
    logic.SetMRMLScene(None)


def ensure_color_table(scene: Any, *, name: str = display.HEAT_TABLE_NAME) -> Any:
    """The heat colour table node (created once per scene, shared by every map)."""
    existing = scene.GetFirstNodeByName(name)
    if existing is not None and existing.IsA("vtkMRMLColorTableNode"):
        return existing
    colors = display.heat_colors()
    node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", name)
    node.SetTypeToUser()
    node.SetNumberOfColors(len(colors))
    node.GetLookupTable().SetTableRange(0, len(colors) - 1)
    for i, (r, g, b, a) in enumerate(colors):
        node.SetColor(i, f"{name}{i}", r, g, b, a)
    node.SetAttribute("Category", "VoxCause")
    return node


def load_volume(scene: Any, path: str | os.PathLike[str], *, name: str, mrml: ModuleType | None = None) -> Any:
    """A scalar volume node read from `path` (NIfTI, NRRD, MHA …) with a storage and a display node.

    Raises:
        ValueError: the file cannot be read (nothing is left in the scene).
    """
    path = Path(path)
    with no_stray_nodes(scene):
        node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
        storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
        storage.SetFileName(os.fspath(path))
        node.SetAndObserveStorageNodeID(storage.GetID())
        if not path.is_file() or not storage.ReadData(node):
            raise ValueError(f"Cannot read volume {path}: the run folder is incomplete; run the explanation again.")
        node.CreateDefaultDisplayNodes()
    return node


def load_segmentation(
    scene: Any, path: str | os.PathLike[str], *, name: str, reference: Any = None, mrml: ModuleType | None = None
) -> Any:
    """A segmentation node read from a `.seg.nrrd`, with its segments' names and colours as written.

    Raises:
        ValueError: the file cannot be read (nothing is left in the scene).
    """
    path = Path(path)
    check_nrrd_header(path)
    with no_stray_nodes(scene):
        node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
        storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
        storage.SetFileName(os.fspath(path))
        node.SetAndObserveStorageNodeID(storage.GetID())
        if not path.is_file() or not storage.ReadData(node):
            raise ValueError(f"Cannot read segmentation {path}: run the explanation again.")
        node.CreateDefaultDisplayNodes()
        if reference is not None:
            node.SetReferenceImageGeometryParameterFromVolumeNode(reference)
    return node


def check_nrrd_header(path: Path) -> None:
    """Refuse a NRRD whose header lacks the basic fields before MRML reads it.

    Why: Slicer's NRRD reader (teem) aborts the whole process on some malformed headers, which inside Slicer
    would close the application; a clear ValueError is shown instead.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError as exc:
        raise ValueError(f"Cannot read segmentation {path}: {exc}. Run the explanation again.") from exc
    header = head.split(b"\n\n", 1)[0].decode("latin-1")
    fields = {line.split(":", 1)[0].strip().lower() for line in header.splitlines()[1:] if ":" in line}
    needed = {"type", "dimension", "sizes", "encoding"}
    if not header.startswith("NRRD000") or not needed <= fields:
        raise ValueError(f"Segmentation {path} is not a complete NRRD file; run the explanation again.")


def segment_names(segmentation_node: Any) -> list[str]:
    """Segment names in order."""
    seg = segmentation_node.GetSegmentation()
    return [seg.GetNthSegment(i).GetName() for i in range(seg.GetNumberOfSegments())]


def export_volume(volume_node: Any, path: str | os.PathLike[str], *, mrml: ModuleType | None = None) -> Path:
    """Write a volume node to a file for the child process, without adding any node to the scene."""
    path = Path(path)
    storage = _new("vtkMRMLVolumeArchetypeStorageNode", mrml)
    storage.SetFileName(os.fspath(path))
    storage.SetUseCompression(False)
    if volume_node is None or volume_node.GetImageData() is None or not storage.WriteData(volume_node):
        raise ValueError(f"Cannot write the input volume to {path}: choose a loaded scalar volume.")
    return path


def export_segment_mask(
    scene: Any,
    segmentation_node: Any,
    segment_id: str,
    reference_volume: Any,
    path: str | os.PathLike[str],
    *,
    mrml: ModuleType | None = None,
) -> Path:
    """Write one segment as a 0/1 label volume on the reference volume's grid (the `--region`/`--mask` file).

    A temporary label node is used and removed again, so the scene is unchanged afterwards.
    """
    mrml = mrml or mrml_module()
    path = Path(path)
    if (
        segmentation_node is None
        or not segment_id
        or segmentation_node.GetSegmentation().GetSegment(segment_id) is None
    ):
        raise ValueError("No region segment selected: choose a segmentation and one of its segments under 'Region'.")
    before = node_ids(scene)
    try:
        label = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "voxcause region (temporary)")
        ids = _vtk_string_array()
        ids.InsertNextValue(segment_id)
        logic = mrml.vtkSlicerSegmentationsModuleLogic
        if not logic.ExportSegmentsToLabelmapNode(segmentation_node, ids, label, reference_volume):
            raise ValueError(f"Cannot export segment {segment_id!r}: check that it overlaps the input volume.")
        export_volume(label, path, mrml=mrml)
    finally:
        for node_id in node_ids(scene) - before:
            node = scene.GetNodeByID(node_id)
            if node is not None:
                scene.RemoveNode(node)
    return path


def _vtk_string_array() -> Any:
    from vtkmodules.vtkCommonCore import vtkStringArray

    return vtkStringArray()


def volume_array(volume_node: Any) -> Any:
    """The voxels as a numpy array (k, j, i) = (z, y, x), sharing memory with the node."""
    from vtkmodules.util.numpy_support import vtk_to_numpy

    image = volume_node.GetImageData()
    dims = image.GetDimensions()
    return vtk_to_numpy(image.GetPointData().GetScalars()).reshape(dims[2], dims[1], dims[0])


def peak_ras(volume_node: Any) -> tuple[float, float, float]:
    """RAS position of the map's maximum (the "jump to peak" target)."""
    import numpy as np
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    values = volume_array(volume_node)
    k, j, i = np.unravel_index(int(np.argmax(values)), values.shape)
    matrix = vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    ras = matrix.MultiplyPoint((float(i), float(j), float(k), 1.0))
    return (ras[0], ras[1], ras[2])


def style_map(map_node: Any, color_table: Any, *, threshold: float, opacity: float) -> display.MapDisplay:
    """Heat colour table, threshold and window on the map's display node; returns the values used."""
    low, high = map_node.GetImageData().GetScalarRange()
    spec = display.map_display(low, high, threshold=threshold, opacity=opacity)
    dnode = map_node.GetDisplayNode()
    dnode.SetAndObserveColorNodeID(color_table.GetID())
    dnode.AutoWindowLevelOff()
    dnode.SetWindowLevelMinMax(spec.window_min, spec.window_max)
    dnode.AutoThresholdOff()
    dnode.SetLowerThreshold(spec.lower)
    dnode.SetUpperThreshold(spec.upper)
    dnode.ApplyThresholdOn()
    dnode.SetInterpolate(True)
    map_node.SetAttribute("VoxCause.Threshold", f"{threshold:g}")
    map_node.SetAttribute("VoxCause.Opacity", f"{opacity:g}")
    return spec


def ensure_slice_views(scene: Any, views: Sequence[str] = VIEWS, *, mrml: ModuleType | None = None) -> list[Any]:
    """Slice composite nodes for the named views, creating slice/composite nodes where the scene has none.

    Inside Slicer the views exist and are returned as they are; in a bare scene (slicer-core, the `.mrb` writer)
    they are created as Slicer itself would, so a saved scene restores them.
    """
    mrml = mrml or mrml_module()
    composites = []
    for view in views:
        composite = _singleton(scene, "vtkMRMLSliceCompositeNode", view)
        if composite is None:
            ensure_orientation_presets(scene, mrml=mrml)
            logic = mrml.vtkMRMLSliceLogic()
            logic.SetMRMLScene(scene)
            slice_node = logic.AddSliceNode(view)
            slice_node.SetOrientation("Axial")
            slice_node.SetDimensions(256, 256, 1)
            composite = logic.GetSliceCompositeNode()
            logic.SetMRMLScene(None)
        composites.append(composite)
    return composites


def ensure_orientation_presets(scene: Any, *, mrml: ModuleType | None = None) -> None:
    """Axial/Coronal/Sagittal presets, which Slicer's application logic adds and a bare scene lacks."""
    mrml = mrml or mrml_module()
    default = scene.GetDefaultNodeByClass("vtkMRMLSliceNode")
    if default is None or default.GetNumberOfSliceOrientationPresets() == 0:
        mrml.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene)


def _singleton(scene: Any, class_name: str, tag: str) -> Any:
    for i in range(scene.GetNumberOfNodesByClass(class_name)):
        node = scene.GetNthNodeByClass(i, class_name)
        if node.GetSingletonTag() == tag or getattr(node, "GetLayoutName", lambda: None)() == tag:
            return node
    return None


def set_layout(scene: Any, layout_id: int, description: str, *, mrml: ModuleType | None = None) -> Any:
    """Register `description` (layout XML) under `layout_id` and switch the scene's layout node to it."""
    mrml = mrml or mrml_module()
    layout = scene.GetFirstNodeByClass("vtkMRMLLayoutNode")
    if layout is None:
        layout = mrml.vtkMRMLLayoutNode()
        layout.SetSingletonTag("vtkMRMLLayoutNode")
        layout = scene.AddNode(layout)
    if layout.IsLayoutDescription(layout_id):
        layout.SetLayoutDescription(layout_id, description)
    else:
        layout.AddLayoutDescription(layout_id, description)
    layout.SetViewArrangement(layout_id)
    return layout


def show_only_in(display_node: Any, scene: Any, views: Sequence[str]) -> None:
    """Show a display node (e.g. a segmentation) in the named slice views only."""
    display_node.RemoveAllViewNodeIDs()
    for view in views:
        slice_node = _singleton(scene, "vtkMRMLSliceNode", view)
        if slice_node is not None:
            display_node.AddViewNodeID(slice_node.GetID())


def jump_to(scene: Any, ras: Sequence[float], *, mrml: ModuleType | None = None) -> None:
    """Centre every slice view on `ras` (the "jump to peak" button)."""
    mrml = mrml or mrml_module()
    mrml.vtkMRMLSliceNode.JumpAllSlices(scene, float(ras[0]), float(ras[1]), float(ras[2]), 1)


def import_results(
    scene: Any,
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    background: Any = None,
    model_segmentation: Any = None,
    threshold: float = display.DEFAULT_THRESHOLD,
    opacity: float = display.DEFAULT_OPACITY,
    mrml: ModuleType | None = None,
) -> ResultNodes:
    """Load a run folder into the scene and show it; on any error nothing is left behind.

    Explanation runs: map -> foreground of every view with the heat table, threshold and opacity; the
    explanation segments in the left view, the model's segmentation (prediction.seg.nrrd when the run wrote
    one, else `model_segmentation`) in the right view; side-by-side layout. Counterfactual runs: original,
    removed and region-only images in three linked views.

    Args:
        scene: the MRML scene.
        out_dir: the run folder (see docs/design.md#output-contracts for its files).
        name: prefix for the new nodes' names (e.g. the input volume's name).
        background: the input volume node shown under the map (None: the map alone).
        model_segmentation: a segmentation node to show beside the explanation when the run wrote none.
        threshold, opacity: see `display.map_display`.
    """
    mrml = mrml or mrml_module()
    out_dir = Path(out_dir)
    nodes = ResultNodes()
    ensure_default_colors(scene, mrml=mrml)
    with no_stray_nodes(scene):
        composites = ensure_slice_views(scene, mrml=mrml)
        if (out_dir / REMOVED_FILE).is_file():
            nodes.removed = load_volume(scene, out_dir / REMOVED_FILE, name=f"{name} region removed", mrml=mrml)
            nodes.only = load_volume(scene, out_dir / ONLY_FILE, name=f"{name} region only", mrml=mrml)
            for composite, volume in zip(composites, (background, nodes.removed, nodes.only), strict=True):
                composite.SetBackgroundVolumeID(volume.GetID() if volume is not None else None)
                composite.SetForegroundVolumeID(None)
                composite.SetLinkedControl(True)
            set_layout(scene, display.COUNTERFACTUAL_LAYOUT_ID, display.COUNTERFACTUAL_LAYOUT, mrml=mrml)
            return nodes
        nodes.color_table = ensure_color_table(scene)
        nodes.map = load_volume(scene, out_dir / MAP_FILE, name=f"{name} responsibility map", mrml=mrml)
        style_map(nodes.map, nodes.color_table, threshold=threshold, opacity=opacity)
        if (out_dir / EXPLANATION_FILE).is_file():
            nodes.explanation = load_segmentation(
                scene, out_dir / EXPLANATION_FILE, name=f"{name} explanation", reference=background, mrml=mrml
            )
            show_only_in(nodes.explanation.GetDisplayNode(), scene, ["Red"])
            nodes.explanation.GetDisplayNode().SetVisibility2DFill(False)
        right = model_segmentation
        if (out_dir / PREDICTION_FILE).is_file():
            nodes.prediction = load_segmentation(
                scene, out_dir / PREDICTION_FILE, name=f"{name} model segmentation", reference=background, mrml=mrml
            )
            right = nodes.prediction
        if right is not None and right.GetDisplayNode() is not None:
            show_only_in(right.GetDisplayNode(), scene, ["Yellow"])
        nodes.probability, nodes.uncertainty = (load_model_map(scene, out_dir / file, name=name, mrml=mrml)
                                                for file in MODEL_MAPS)
        for composite in composites:
            composite.SetBackgroundVolumeID(background.GetID() if background is not None else nodes.map.GetID())
            composite.SetForegroundVolumeID(nodes.map.GetID() if background is not None else None)
            composite.SetForegroundOpacity(opacity)
            composite.SetLinkedControl(True)
        if nodes.probability is not None and background is not None:  # beside the model's own segmentation
            composites[VIEWS.index("Yellow")].SetForegroundVolumeID(nodes.probability.GetID())
        set_layout(scene, display.EXPLANATION_LAYOUT_ID, display.EXPLANATION_LAYOUT, mrml=mrml)
        jump_to(scene, peak_ras(nodes.map), mrml=mrml)
    return nodes


def load_model_map(scene: Any, path: Path, *, name: str, mrml: ModuleType | None = None) -> Any:
    """A segmenter's probability or uncertainty (`MODEL_MAPS`) as a scalar volume with its colour table, windowed
    over its values (0..1 for a probability) with the background (below 2% of the top) transparent; None when the
    run wrote no such file (a classifier, a single model)."""
    if not path.is_file():
        return None
    suffix, colours = MODEL_MAPS[path.name]
    node = load_volume(scene, path, name=f"{name} {suffix}", mrml=mrml)
    high = 1.0 if path.name.startswith("probability") else max(node.GetImageData().GetScalarRange()[1], 1e-6)
    display_node = node.GetDisplayNode()
    display_node.SetAndObserveColorNodeID(colours)
    display_node.AutoWindowLevelOff()
    display_node.SetWindowLevelMinMax(0.0, high)
    display_node.AutoThresholdOff()
    display_node.SetLowerThreshold(0.02 * high)
    display_node.SetUpperThreshold(high)
    display_node.ApplyThresholdOn()
    return node


def set_opacity(scene: Any, opacity: float) -> None:
    """Foreground opacity of every slice view (the opacity slider)."""
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode").SetForegroundOpacity(opacity)
