"""DICOM out: a sample patient written as DICOM series, explained from the command line, and the
explanation read back as DICOM SEG (``explanation.seg.dcm``) and Parametric Map (``map.pm.dcm``), checked
against the source series and against the NIfTI/NRRD outputs voxel for voxel."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio
import torch

highdicom = pytest.importorskip("highdicom")  # and pydicom 3 (the "dicom" extra)

import pydicom  # noqa: E402
from voxcause.cli.main import main  # noqa: E402
from voxcause.errors import InputError  # noqa: E402
from voxcause.explanation import Explanation, summary_schema  # noqa: E402
from voxcause.io import read_image  # noqa: E402
from voxcause.io.dicom_out import is_dicom_input  # noqa: E402
from voxcause.io.dicom_series import write_dicom_series, write_patient_dicom  # noqa: E402
from voxcause.samples import make_patient, model_path  # noqa: E402
from voxcause.samples.training import HELDOUT_SEED_BASE  # noqa: E402

SEQUENCES = ("T1", "T1c", "T2", "FLAIR")


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def dicom_case(tmp_path_factory):
    """A held-out glioma as four DICOM series, explained by the sample classifier (rex, 2 iterations)."""
    root = tmp_path_factory.mktemp("dicom_out")
    patient = make_patient(HELDOUT_SEED_BASE, "glioma")
    series = write_patient_dicom(patient, root / "study", uid_seed="voxcause-test-dicom-out")
    out = root / "out"
    code = main(["explain", *(str(series[name]) for name in SEQUENCES), "--model", str(model_path("classifier3d")),
                 "--iterations", "2", "--seed", "0", "--out", str(out)])
    assert code == 0
    return {"patient": patient, "series": series, "out": out}


def _source(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(path, stop_before_pixels=True) for path in sorted(folder.glob("*.dcm"))]


def _slice_index(reference: sitk.Image, position) -> int:
    """The source slice k that a frame's Image Position (Patient) lands on (must be a whole voxel)."""
    index = reference.TransformPhysicalPointToContinuousIndex([float(v) for v in position])
    assert np.allclose(index[:2], 0, atol=1e-3), index
    assert abs(index[2] - round(index[2])) < 1e-3, index
    return int(round(index[2]))


def test_patient_series_geometry_and_uids(dicom_case):
    """The series writer: one study, one frame of reference, distinct series, the patient's exact geometry."""
    series = dicom_case["series"]
    first = {name: _source(folder)[0] for name, folder in series.items()}
    assert len({ds.StudyInstanceUID for ds in first.values()}) == 1
    assert len({ds.FrameOfReferenceUID for ds in first.values()}) == 1
    assert len({ds.SeriesInstanceUID for ds in first.values()}) == len(SEQUENCES)
    patient = dicom_case["patient"]
    volume = read_image([str(series[name]) for name in SEQUENCES])
    assert volume.reference.GetOrigin() == pytest.approx(patient.origin)
    assert volume.reference.GetDirection() == pytest.approx(patient.direction)
    assert volume.reference.GetSpacing() == pytest.approx(patient.spacing)
    assert np.abs(volume.array - patient.channels).max() <= 0.5 + 1e-3  # rounded to int16, no rescale


def test_summary_lists_the_dicom_files(dicom_case):
    """summary.json names every file it sits beside, the DICOM SEG and Parametric Map included, as its schema says."""
    import jsonschema

    out = dicom_case["out"]
    volumes = json.loads((out / "summary.json").read_text())["volumes"]
    schema = summary_schema()
    volumes_schema = {**schema["properties"]["volumes"], "$defs": schema["$defs"]}
    jsonschema.validate(volumes, volumes_schema, cls=jsonschema.Draft202012Validator)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**volumes, "map_dicom": "map.dcm"}, volumes_schema, cls=jsonschema.Draft202012Validator)
    assert volumes["explanation_dicom"] == "explanation.seg.dcm" and volumes["map_dicom"] == "map.pm.dcm"
    for name in volumes.values():
        assert (out / name).is_file(), name
    assert {p.name for p in out.glob("*.dcm")} <= set(volumes.values())


def test_seg_references_source_and_matches_nrrd(dicom_case):
    out, t1 = dicom_case["out"], dicom_case["series"]["T1"]
    assert {"explanation.seg.dcm", "map.pm.dcm", "explanation.seg.nrrd", "map.nii.gz"} <= {p.name for p in out.iterdir()}
    source = _source(t1)
    source_uids = {ds.SOPInstanceUID for ds in source}
    seg = highdicom.seg.segread(out / "explanation.seg.dcm")
    assert seg.FrameOfReferenceUID == source[0].FrameOfReferenceUID
    assert seg.StudyInstanceUID == source[0].StudyInstanceUID
    assert seg.PatientID == source[0].PatientID
    # Every referenced instance of the T1 series exists in it (the other channels' series are listed too).
    referenced = {
        item.ReferencedSOPInstanceUID: series.SeriesInstanceUID
        for series in seg.ReferencedSeriesSequence
        for item in series.ReferencedInstanceSequence
    }
    study_uids = {ds.SOPInstanceUID for folder in dicom_case["series"].values() for ds in _source(folder)}
    assert set(referenced) <= study_uids
    assert {uid for uid, series_uid in referenced.items() if series_uid == source[0].SeriesInstanceUID} == source_uids
    # Each frame is derived from the source slices at its own position (the T1 slice, and the other channels').
    position_of = {ds.SOPInstanceUID: [float(v) for v in ds.ImagePositionPatient] for ds in source}
    for frame in seg.PerFrameFunctionalGroupsSequence:
        uids = [item.ReferencedSOPInstanceUID for derivation in frame.DerivationImageSequence
                for item in derivation.SourceImageSequence]
        assert uids and set(uids) <= study_uids
        t1_uids = [uid for uid in uids if uid in source_uids]
        assert len(t1_uids) == 1
        frame_position = [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient]
        assert position_of[t1_uids[0]] == pytest.approx(frame_position, abs=1e-3)

    nrrd = slicerio.read_segmentation(str(out / "explanation.seg.nrrd"))
    nrrd_names = [segment["name"] for segment in nrrd["segments"]]
    labels = [item.SegmentLabel for item in seg.SegmentSequence]
    assert labels == nrrd_names and "sufficient explanation" in labels
    assert any(label.startswith("responsibility level") for label in labels)

    # Place every SEG frame by its Image Position (Patient) on the source grid: the masks must be the NRRD's.
    reference = read_image(str(t1)).reference
    shape = tuple(reversed(reference.GetSize()))
    rebuilt = {number: np.zeros(shape, bool) for number in range(1, len(labels) + 1)}
    pixels = seg.pixel_array if seg.pixel_array.ndim == 3 else seg.pixel_array[None]
    for frame, groups in zip(pixels, seg.PerFrameFunctionalGroupsSequence, strict=True):
        number = int(groups.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        position = groups.PlanePositionSequence[0].ImagePositionPatient
        rebuilt[number][_slice_index(reference, position)] |= frame.astype(bool)
    for number, segment in enumerate(nrrd["segments"], start=1):
        layer = nrrd["voxels"] if nrrd["voxels"].ndim == 3 else nrrd["voxels"][segment["layer"]]
        expected = (layer == segment["labelValue"]).transpose()  # slicerio (i, j, k) -> numpy (z, y, x)
        assert np.array_equal(rebuilt[number], expected), segment["name"]
    assert np.allclose(nrrd["ijkToLPS"][:3, 3], reference.GetOrigin())


def test_parametric_map_matches_map(dicom_case):
    out, t1 = dicom_case["out"], dicom_case["series"]["T1"]
    source = _source(t1)
    pm = pydicom.dcmread(out / "map.pm.dcm")
    assert pm.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30"  # Parametric Map Storage
    assert pm.FrameOfReferenceUID == source[0].FrameOfReferenceUID
    source_uids = {ds.SOPInstanceUID for ds in source}
    referenced = {item.ReferencedSOPInstanceUID for series in pm.ReferencedSeriesSequence
                  for item in series.ReferencedInstanceSequence}
    assert referenced == source_uids
    reference = read_image(str(t1)).reference
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "map.nii.gz")))
    rebuilt = np.full(expected.shape, np.nan, np.float32)
    frames = pm.pixel_array if pm.pixel_array.ndim == 3 else pm.pixel_array[None]
    assert frames.dtype.kind == "f"
    for frame, groups in zip(frames, pm.PerFrameFunctionalGroupsSequence, strict=True):
        rebuilt[_slice_index(reference, groups.PlanePositionSequence[0].ImagePositionPatient)] = frame
    np.testing.assert_allclose(rebuilt, expected, rtol=1e-6, atol=1e-7)
    assert float(expected.max()) > 0


def test_dicom_request_on_nifti_is_refused(tmp_path, capsys):
    image = sitk.GetImageFromArray(np.random.default_rng(0).random((8, 8, 8), dtype=np.float32))
    sitk.WriteImage(image, str(tmp_path / "case.nii.gz"))
    out = tmp_path / "out"
    code = main(["explain", str(tmp_path / "case.nii.gz"), "--model", str(model_path("classifier3d")),
                 "--dicom", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    lines = [line for line in captured.err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "DICOM output needs a DICOM input series" in lines[0], captured.err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.nii.gz"]


def _explanation(volume, value_map, masks) -> Explanation:
    return Explanation(map=value_map, masks=masks, target={"index": 1, "label": "lesion", "kind": "class"},
                       score=0.9, method="test", params={}, stats={}, details={}, volume=volume)


def _oblique_image() -> sitk.Image:
    """Anisotropic, oblique, off-centre: a DICOM geometry bug cannot hide behind an identity direction."""
    rng = np.random.default_rng(1)
    image = sitk.GetImageFromArray((rng.random((7, 12, 10)) * 500).astype(np.float32))
    image.SetSpacing((0.8, 0.9, 2.5))
    image.SetOrigin((-31.0, 17.5, 4.25))
    rotation = sitk.VersorTransform((0.3, -0.2, 0.9), 0.5)
    image.SetDirection(rotation.GetMatrix())
    return image


def test_oblique_series_round_trip(tmp_path):
    """Python API, automatic DICOM output: SEG and parametric map frames land on the source slices."""
    written = write_dicom_series(_oblique_image(), tmp_path / "series", description="T2", uid_seed="oblique")
    volume = read_image(str(tmp_path / "series"))
    assert is_dicom_input(volume) and volume.spatial_shape == (7, 12, 10)
    assert volume.reference.GetDirection() == pytest.approx(_oblique_image().GetDirection(), abs=1e-5)
    value_map = np.random.default_rng(2).random(volume.spatial_shape).astype(np.float32)
    mask = np.zeros(volume.spatial_shape, bool)
    mask[2:5, 3:9, 1:4] = True
    explanation = _explanation(volume, value_map, {"sufficient": mask})
    rng = np.random.default_rng(3)
    explanation.extra_volumes = {"probability": rng.random(volume.spatial_shape).astype(np.float32),
                                 "uncertainty": (rng.random(volume.spatial_shape) / 4).astype(np.float32)}
    explanation.save(tmp_path / "out")
    seg = highdicom.seg.segread(tmp_path / "out" / "explanation.seg.dcm")
    assert seg.FrameOfReferenceUID == written["FrameOfReferenceUID"]
    labels = [item.SegmentLabel for item in seg.SegmentSequence]
    assert labels[0] == "sufficient explanation" and len(labels) > 1
    rebuilt = np.zeros(volume.spatial_shape, bool)
    for frame, groups in zip(seg.pixel_array, seg.PerFrameFunctionalGroupsSequence, strict=True):
        if int(groups.SegmentIdentificationSequence[0].ReferencedSegmentNumber) == 1:
            rebuilt[_slice_index(volume.reference, groups.PlanePositionSequence[0].ImagePositionPatient)] |= frame > 0
    assert np.array_equal(rebuilt, mask)
    volumes = json.loads((tmp_path / "out" / "summary.json").read_text())["volumes"]
    assert (volumes["explanation_dicom"], volumes["map_dicom"]) == ("explanation.seg.dcm", "map.pm.dcm")
    assert (volumes["probability_dicom"], volumes["uncertainty_dicom"]) == ("probability.pm.dcm", "uncertainty.pm.dcm")
    series = set()
    for name, expected, label in (("map", value_map, "RESPONSIBILITY"),
                                  ("probability", explanation.extra_volumes["probability"], "PROBABILITY"),
                                  ("uncertainty", explanation.extra_volumes["uncertainty"], "UNCERTAINTY")):
        pm = pydicom.dcmread(tmp_path / "out" / f"{name}.pm.dcm")
        assert pm.FrameOfReferenceUID == written["FrameOfReferenceUID"] and pm.Modality == "OT"
        mapping = pm.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
        assert mapping.LUTLabel == label
        series.add(pm.SeriesInstanceUID)
        back = np.full(volume.spatial_shape, np.nan, np.float32)
        for frame, groups in zip(pm.pixel_array, pm.PerFrameFunctionalGroupsSequence, strict=True):
            back[_slice_index(volume.reference, groups.PlanePositionSequence[0].ImagePositionPatient)] = frame
        np.testing.assert_array_equal(back, expected)
    assert len(series) == 3


def test_api_refuses_dicom_for_nifti_and_skips_it_by_default(tmp_path):
    sitk.WriteImage(_oblique_image(), str(tmp_path / "case.nii.gz"))
    volume = read_image(str(tmp_path / "case.nii.gz"))
    assert not is_dicom_input(volume)
    explanation = _explanation(volume, np.ones(volume.spatial_shape, np.float32), {})
    with pytest.raises(InputError, match="DICOM output needs a DICOM input series"):
        explanation.save(tmp_path / "refused", dicom=True)
    assert not (tmp_path / "refused").exists()
    explanation.save(tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.dcm")) and (tmp_path / "out" / "map.nii.gz").exists()
    volumes = json.loads((tmp_path / "out" / "summary.json").read_text())["volumes"]
    assert not {"explanation_dicom", "map_dicom"} & set(volumes)


def test_without_highdicom_dicom_input_still_saves(tmp_path, monkeypatch):
    """Where highdicom cannot load (the MONAI Label environment: pydicom 2), automatic DICOM output is skipped
    with a warning and the rest is written; asking for it is a one-line error naming the extra."""
    write_dicom_series(_oblique_image(), tmp_path / "series")
    volume = read_image(str(tmp_path / "series"))
    explanation = _explanation(volume, np.ones(volume.spatial_shape, np.float32), {})
    monkeypatch.setitem(sys.modules, "highdicom", None)
    with pytest.warns(UserWarning, match="not written"):
        explanation.save(tmp_path / "out")
    assert (tmp_path / "out" / "map.nii.gz").exists() and not list((tmp_path / "out").glob("*.dcm"))
    assert "map_dicom" not in json.loads((tmp_path / "out" / "summary.json").read_text())["volumes"]
    with pytest.raises(InputError, match=r"voxcause\[dicom\]"):
        explanation.save(tmp_path / "asked", dicom=True)
    assert not (tmp_path / "asked").exists()


def test_cli_dicom_request_without_highdicom_fails_first(tmp_path, monkeypatch, capsys):
    write_dicom_series(_oblique_image(), tmp_path / "series")
    monkeypatch.setitem(sys.modules, "highdicom", None)
    code = main(["explain", str(tmp_path / "series"), "--model", str(model_path("classifier3d")), "--dicom",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "voxcause[dicom]" in err[0]
    assert not (tmp_path / "out").exists()
