"""The sample case (a synthetic glioma patient from `voxcause.samples`) shown through Slicer's slice pipeline.

`test_render_sample_case` stands a smoothed lesion mask in for the map, so it checks the display chain on real
anatomy without a model. `test_real_cli_on_sample_case` runs the real `voxcause explain` on a sample model when
the core's CLI and the sample models are installed. Set VOXCAUSE_RENDER_DIR to keep the PNGs for a look.
"""

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from VoxCauseLib import mrml as vm

pytestmark = [pytest.mark.slicer, pytest.mark.slow]
pytest.importorskip("slicer_core")  # before the (module-scoped, slow) sample patient is made


@pytest.fixture(scope="module")
def patient():
    generator = pytest.importorskip("voxcause.samples.generator")
    try:
        return generator.make_patient(3, "glioma")
    except Exception as exc:  # noqa: BLE001 - the sample data may be missing in this environment
        pytest.skip(f"sample patient unavailable: {exc}")


def _keep(path: Path) -> None:
    folder = os.environ.get("VOXCAUSE_RENDER_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


def _write_channels(patient, folder: Path) -> list[Path]:
    import SimpleITK as sitk

    paths = []
    for name, channel in zip(patient.sequences, patient.channels, strict=True):
        path = folder / f"{name}.nii.gz"
        sitk.WriteImage(patient.image(channel), str(path))
        paths.append(path)
    return paths


def _heat_at(pixels: np.ndarray, tile: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    view = pixels[:, tile * (size + 4) : tile * (size + 4) + size, :3].astype(int)
    c = size // 2
    return view[c - 3 : c + 4, c - 3 : c + 4].reshape(-1, 3).mean(axis=0), view


def _read_png(path: Path) -> np.ndarray:
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkIOImage import vtkPNGReader

    reader = vtkPNGReader()
    reader.SetFileName(str(path))
    reader.Update()
    w, h, _ = reader.GetOutput().GetDimensions()
    return vtk_to_numpy(reader.GetOutput().GetPointData().GetScalars()).reshape(h, w, -1)


def test_render_sample_case(scene, patient, tmp_path):
    import SimpleITK as sitk
    import slicerio
    from scipy import ndimage
    from VoxCauseLib.render import render_png

    t1c = _write_channels(patient, tmp_path)[1]
    tumour = patient.label > 0
    heat = ndimage.gaussian_filter(tumour.astype(np.float32), 2.0)
    heat /= heat.max()
    run = tmp_path / "run"
    run.mkdir()
    sitk.WriteImage(patient.image(heat.astype(np.float32)), str(run / "map.nii.gz"))
    reference = sitk.ReadImage(str(t1c))
    matrix = np.eye(4)
    matrix[:3, :3] = np.array(reference.GetDirection()).reshape(3, 3) * np.array(reference.GetSpacing())
    matrix[:3, 3] = reference.GetOrigin()
    seg = slicerio.create_segmentation(heat.T.shape, matrix)
    slicerio.add_segment(
        seg, (heat > 0.5).T, {"id": "sufficient", "name": "sufficient explanation", "color": [1, 0.85, 0]}
    )
    slicerio.write_segmentation(str(run / "explanation.seg.nrrd"), seg)

    background = vm.load_volume(scene, t1c, name="T1c")
    nodes = vm.import_results(scene, run, name="T1c", background=background, threshold=0.3, opacity=0.6)
    peak = vm.peak_ras(nodes.map)
    k, j, i = np.unravel_index(int(np.argmax(heat)), heat.shape)
    assert tumour[k, j, i]
    path = render_png(
        scene,
        tmp_path / "sample-case-render.png",
        background=background,
        foreground=nodes.map,
        opacity=0.6,
        segmentation=nodes.explanation,
        segment_ids=["sufficient"],
        center_ras=peak,
        size=200,
    )
    _keep(path)
    pixels = _read_png(path)
    for tile in range(3):
        centre, view = _heat_at(pixels, tile, 200)
        assert centre[0] > 150 and centre[0] > centre[2] + 30, (tile, centre)  # warm heat over the lesion
        grey = np.abs(view[..., 0] - view[..., 2]) < 8
        assert grey.mean() > 0.6  # most of the view is the grey MR image


@pytest.mark.skipif(importlib.util.find_spec("voxcause.cli.main") is None, reason="voxcause CLI not installed yet")
def test_real_cli_on_sample_case(scene, patient, tmp_path):
    from VoxCauseLib.command import LAUNCHER, ExplainRequest
    from VoxCauseLib.job import ExplainJob
    from VoxCauseLib.models import list_sample_models
    from VoxCauseLib.options import Method
    from VoxCauseLib.render import render_png
    from VoxCauseLib.state import Outcome

    models = [
        m for m in list_sample_models() if m.task == "classification" and m.channel_count == 4 and m.spatial_dims == 3
    ]
    if not models:
        pytest.skip("no 4-channel sample classifier installed")
    volumes = [vm.load_volume(scene, p, name=p.name.split(".")[0]) for p in _write_channels(patient, tmp_path)]
    request = ExplainRequest(
        images=tuple(volumes), model=str(models[0].path), method=Method.REX, iterations=8, out_dir=tmp_path / "run"
    )
    job = ExplainJob(scene, request, launcher=[sys.executable, "-c", LAUNCHER])
    assert job.start()
    result = job.wait(timeout=900)
    assert result.outcome is Outcome.SUCCEEDED, result.message + "\n" + "\n".join(job.log[-20:])
    assert "sufficient explanation" in vm.segment_names(result.nodes.explanation)
    # The responsibility map lies on the glioma: its peak within 3 voxels of the tumour, and a large share
    # of its mass inside it (measured on the demo case: peak inside, 46% of the mass).
    import SimpleITK as sitk
    from scipy import ndimage

    values = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "run" / "map.nii.gz")))
    tumour = patient.label > 0
    positive = np.clip(values, 0, None)
    assert ndimage.binary_dilation(tumour, iterations=3).flat[int(np.argmax(values))]
    assert positive[tumour].sum() > 0.2 * positive.sum()
    path = render_png(
        scene,
        tmp_path / "sample-case-rex.png",
        background=volumes[1],
        foreground=result.nodes.map,
        segmentation=result.nodes.explanation,
        center_ras=vm.peak_ras(result.nodes.map),
        size=200,
        segment_ids=[result.nodes.explanation.GetSegmentation().GetNthSegmentID(0)],
    )
    _keep(path)
    assert path.stat().st_size > 1000
