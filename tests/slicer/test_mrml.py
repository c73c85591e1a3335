"""Results in real MRML (slicer-core): names, colours, geometry, colour table, threshold, opacity, .mrb, render."""

import numpy as np
import pytest
from slicer_helpers import LESION, ORIGIN, SHAPE, SPACING
from VoxCauseLib import display
from VoxCauseLib import mrml as vm

pytestmark = pytest.mark.slicer


def _ras_of_voxel(z, y, x):
    """RAS of a voxel of the synthetic case (identity direction: LPS = origin + index * spacing)."""
    lps = np.array(ORIGIN) + np.array([x, y, z]) * np.array(SPACING)
    return (-lps[0], -lps[1], lps[2])


def test_results_load_with_names_colours_geometry_and_display(scene, image_path, run_folder):
    background = vm.load_volume(scene, image_path, name="case")
    nodes = vm.import_results(scene, run_folder, name="case", background=background, threshold=0.4, opacity=0.7)
    # names
    assert nodes.map.GetName() == "case responsibility map"
    assert nodes.explanation.GetName() == "case explanation"
    assert vm.segment_names(nodes.explanation) == ["sufficient explanation", "responsibility level 1"]
    seg = nodes.explanation.GetSegmentation()
    assert seg.GetSegment("sufficient").GetColor() == pytest.approx((1.0, 0.85, 0.0))
    assert seg.GetSegment("level1").GetColor() == pytest.approx((0.9, 0.2, 0.1))
    # geometry: file LPS -> Slicer RAS, same grid as the input
    for node in (background, nodes.map):
        assert node.GetImageData().GetDimensions() == SHAPE[::-1]
        assert node.GetSpacing() == pytest.approx(SPACING)
        assert node.GetOrigin() == pytest.approx((-ORIGIN[0], -ORIGIN[1], ORIGIN[2]))
    assert vm.peak_ras(nodes.map) == pytest.approx(_ras_of_voxel(*LESION))
    assert vm.volume_array(nodes.map).shape == SHAPE
    # colour table, threshold, window, opacity
    dnode = nodes.map.GetDisplayNode()
    table = scene.GetNodeByID(dnode.GetColorNodeID())
    assert table.GetName() == "VoxCauseHeat" and table.GetNumberOfColors() == 256
    rgba = [0.0] * 4
    table.GetColor(255, rgba)
    assert rgba == pytest.approx(display.heat_colors()[255], abs=0.5 / 255)  # stored as 8-bit
    assert dnode.GetApplyThreshold() and dnode.GetLowerThreshold() == pytest.approx(0.4)
    assert (dnode.GetWindowLevelMin(), dnode.GetWindowLevelMax()) == pytest.approx((0.4, 1.0))
    composites = vm.ensure_slice_views(scene)
    assert [c.GetLayoutName() for c in composites] == ["Red", "Yellow", "Green"]
    for composite in composites:
        assert composite.GetBackgroundVolumeID() == background.GetID()
        assert composite.GetForegroundVolumeID() == nodes.map.GetID()
        assert composite.GetForegroundOpacity() == pytest.approx(0.7)
    # explanation drawn in the left view only, outline
    red = scene.GetNodeByID("vtkMRMLSliceNodeRed")
    assert nodes.explanation.GetDisplayNode().GetViewNodeIDs() == (red.GetID(),)
    assert scene.GetFirstNodeByClass("vtkMRMLLayoutNode").GetViewArrangement() == display.EXPLANATION_LAYOUT_ID
    # slices jumped to the peak
    assert red.GetSliceOffset() == pytest.approx(_ras_of_voxel(*LESION)[2])


def test_sliders_update_threshold_and_opacity(scene, image_path, run_folder):
    background = vm.load_volume(scene, image_path, name="case")
    nodes = vm.import_results(scene, run_folder, name="case", background=background)
    vm.style_map(nodes.map, nodes.color_table, threshold=0.8, opacity=0.2)
    vm.set_opacity(scene, 0.2)
    assert nodes.map.GetDisplayNode().GetLowerThreshold() == pytest.approx(0.8)
    assert scene.GetNodeByID("vtkMRMLSliceCompositeNodeRed").GetForegroundOpacity() == pytest.approx(0.2)
    assert vm.ensure_color_table(scene) is nodes.color_table  # shared, not duplicated
    assert (
        scene.GetNumberOfNodesByClass("vtkMRMLColorTableNode")
        == len(
            [
                1
                for i in range(scene.GetNumberOfNodesByClass("vtkMRMLColorTableNode"))
                if scene.GetNthNodeByClass(i, "vtkMRMLColorTableNode").GetName() != "VoxCauseHeat"
            ]
        )
        + 1
    )


def test_model_segmentation_goes_to_the_right_view(scene, image_path, run_folder):
    background = vm.load_volume(scene, image_path, name="case")
    model_seg = vm.load_segmentation(scene, run_folder / "explanation.seg.nrrd", name="model seg")
    vm.import_results(scene, run_folder, name="case", background=background, model_segmentation=model_seg)
    assert model_seg.GetDisplayNode().GetViewNodeIDs() == ("vtkMRMLSliceNodeYellow",)


def test_a_failed_import_leaves_no_stray_nodes(scene, image_path, tmp_path, run_folder):
    background = vm.load_volume(scene, image_path, name="case")
    before = vm.node_ids(scene)
    with pytest.raises(ValueError, match="run the explanation again"):
        vm.import_results(scene, tmp_path / "empty", name="case", background=background)
    assert vm.node_ids(scene) == before
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "map.nii.gz").write_bytes((run_folder / "map.nii.gz").read_bytes())
    (broken / "explanation.seg.nrrd").write_text("NRRD0004\ngarbage\n")
    with pytest.raises(ValueError):
        vm.import_results(scene, broken, name="case", background=background)
    assert vm.node_ids(scene) == before


def test_exports_keep_geometry_and_add_no_node(scene, image_path, run_folder, tmp_path):
    import SimpleITK as sitk

    background = vm.load_volume(scene, image_path, name="case")
    seg = vm.load_segmentation(scene, run_folder / "explanation.seg.nrrd", name="seg", reference=background)
    before = vm.node_ids(scene)
    vm.export_volume(background, tmp_path / "in.nrrd")
    vm.export_segment_mask(scene, seg, "sufficient", background, tmp_path / "mask.nrrd")
    assert vm.node_ids(scene) == before
    original, exported, mask = (
        sitk.ReadImage(str(p)) for p in (image_path, tmp_path / "in.nrrd", tmp_path / "mask.nrrd")
    )
    for image in (exported, mask):
        assert image.GetSize() == original.GetSize()
        assert image.GetSpacing() == pytest.approx(original.GetSpacing())
        assert image.GetOrigin() == pytest.approx(original.GetOrigin())
        assert image.GetDirection() == pytest.approx(original.GetDirection())
    assert np.array_equal(sitk.GetArrayFromImage(exported), sitk.GetArrayFromImage(original))
    heat = sitk.GetArrayFromImage(sitk.ReadImage(str(run_folder / "map.nii.gz")))
    assert np.array_equal(sitk.GetArrayFromImage(mask) > 0, heat > 0.5)
    with pytest.raises(ValueError, match="No region segment"):
        vm.export_segment_mask(scene, seg, "no-such-segment", background, tmp_path / "x.nrrd")
    assert vm.node_ids(scene) == before


def test_color_table_file_reads_back_in_slicer(mrml, scene, tmp_path):
    path = display.write_color_table(tmp_path / "voxcause-heat.ctbl")
    node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", "read")
    storage = mrml.vtkMRMLColorTableStorageNode()
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    assert node.GetNumberOfColors() == 256
    for index in (0, 100, 255):
        rgba = [0.0] * 4
        node.GetColor(index, rgba)
        assert rgba == pytest.approx(display.heat_colors()[index], abs=0.5 / 255)
    assert node.GetColorName(7) == "VoxCauseHeat7"


def test_mrb_scene_opens_with_display_set_up(mrml, image_path, run_folder):
    from VoxCauseLib.bundle import main, read_scene_mrb, write_scene_mrb

    path = write_scene_mrb(run_folder, threshold=0.3, opacity=0.55)  # image path from summary.json
    assert path.name == "voxcause-scene.mrb" and (run_folder / "voxcause-heat.ctbl").is_file()
    hidden = sorted(p.name for p in run_folder.iterdir() if p.name.startswith("."))
    assert hidden in ([], [".voxcause-outputs.json"]), "no temporary file left (the output manifest may be there)"
    scene = read_scene_mrb(path)
    try:
        image = scene.GetFirstNodeByName("case")
        heat = scene.GetFirstNodeByName("case responsibility map")
        seg = scene.GetFirstNodeByName("case explanation")
        assert image is not None and heat is not None and seg is not None
        assert vm.segment_names(seg) == ["sufficient explanation", "responsibility level 1"]
        dnode = heat.GetDisplayNode()
        assert scene.GetNodeByID(dnode.GetColorNodeID()).GetName() == "VoxCauseHeat"
        assert dnode.GetApplyThreshold() and dnode.GetLowerThreshold() == pytest.approx(0.3)
        red = scene.GetNodeByID("vtkMRMLSliceCompositeNodeRed")
        assert red.GetForegroundVolumeID() == heat.GetID() and red.GetBackgroundVolumeID() == image.GetID()
        assert red.GetForegroundOpacity() == pytest.approx(0.55)
        assert scene.GetFirstNodeByClass("vtkMRMLLayoutNode").GetViewArrangement() == display.EXPLANATION_LAYOUT_ID
        assert heat.GetOrigin() == pytest.approx((-ORIGIN[0], -ORIGIN[1], ORIGIN[2]))
    finally:
        scene.Clear(True)
    assert main([str(run_folder / "does-not-exist")]) == 2


def test_headless_slice_render_shows_the_heat_over_the_lesion(scene, image_path, run_folder, tmp_path):
    """The real slice pipeline (vtkMRMLSliceLogic) blends image, map and explanation outline into a PNG."""
    from VoxCauseLib.render import render_png
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkIOImage import vtkPNGReader

    background = vm.load_volume(scene, image_path, name="case")
    nodes = vm.import_results(scene, run_folder, name="case", background=background, threshold=0.3, opacity=0.8)
    before = vm.node_ids(scene)
    path = render_png(
        scene,
        tmp_path / "render.png",
        background=background,
        foreground=nodes.map,
        opacity=0.8,
        segmentation=nodes.explanation,
        segment_ids=["sufficient"],
        center_ras=vm.peak_ras(nodes.map),
        size=128,
    )
    assert vm.node_ids(scene) == before
    reader = vtkPNGReader()
    reader.SetFileName(str(path))
    reader.Update()
    w, h, _ = reader.GetOutput().GetDimensions()
    pixels = vtk_to_numpy(reader.GetOutput().GetPointData().GetScalars()).reshape(h, w, -1).astype(int)
    assert (w, h) == (3 * 128 + 2 * 4, 128)
    for tile in range(3):
        view = pixels[:, tile * 132 : tile * 132 + 128, :3]
        centre = view[60:68, 60:68].reshape(-1, 3).mean(axis=0)
        corner = view[:16, :16].reshape(-1, 3).mean(axis=0)
        assert centre[0] > 200 and centre[0] > centre[2] + 80  # heat colours (red/yellow) at the peak
        assert abs(corner[0] - corner[2]) < 10  # grey (or black) image away from it
        yellow = (view[..., 0] > 200) & (view[..., 1] > 180) & (view[..., 2] < 60)
        assert yellow.sum() > 10  # the sufficient explanation's outline


def test_model_probability_and_uncertainty_load_as_coloured_volumes_beside_the_segmentation(scene, image_path,
                                                                                            run_folder):
    """A segmenter's probability.nii.gz (and an ensemble's uncertainty.nii.gz) load as scalar volumes with a colour
    table, windowed over their values; the probability is the right view's foreground, over the model's segments."""
    import SimpleITK as sitk

    responsibility = sitk.ReadImage(str(run_folder / "map.nii.gz"))
    values = sitk.GetArrayFromImage(responsibility)
    probability = sitk.GetImageFromArray((values / values.max()).astype(np.float32))
    probability.CopyInformation(responsibility)
    sitk.WriteImage(probability, str(run_folder / "probability.nii.gz"))
    uncertainty = sitk.GetImageFromArray((values / values.max() / 4).astype(np.float32))
    uncertainty.CopyInformation(responsibility)
    sitk.WriteImage(uncertainty, str(run_folder / "uncertainty.nii.gz"))
    background = vm.load_volume(scene, image_path, name="case")
    nodes = vm.import_results(scene, run_folder, name="case", background=background)
    assert nodes.probability.GetName() == "case model probability"
    assert nodes.uncertainty.GetName() == "case model uncertainty (SD across folds)"
    assert vm.volume_array(nodes.probability) == pytest.approx(values / values.max(), abs=1e-6)
    shown = nodes.probability.GetDisplayNode()
    assert scene.GetNodeByID(shown.GetColorNodeID()).GetName() == "Rainbow"
    assert (shown.GetWindowLevelMin(), shown.GetWindowLevelMax()) == pytest.approx((0.0, 1.0))
    assert nodes.uncertainty.GetDisplayNode().GetWindowLevelMax() == pytest.approx(0.25, abs=1e-6)
    yellow, red = (scene.GetNodeByID(f"vtkMRMLSliceCompositeNode{view}") for view in ("Yellow", "Red"))
    assert yellow.GetForegroundVolumeID() == nodes.probability.GetID()
    assert red.GetForegroundVolumeID() == nodes.map.GetID()
    assert {nodes.probability, nodes.uncertainty} <= set(nodes.all())
