"""The app on a real DICOMweb PACS: Orthanc holds a sample patient as DICOM, MONAI Label serves it
(``--studies <orthanc>/dicom-web``), `MONAILabelClient` drives it, and saved labels come back as DICOM SEG.

Runs against the fixtures of conftest.py: a private Orthanc (Debian's orthanc + orthanc-dicomweb, installed by
.ci/setup_orthanc.sh) and a MONAI Label server over it. Image ids are SeriesInstanceUIDs; the server finds the
four sequences of the study by SeriesDescription (lib/dicomweb.py).
"""

from __future__ import annotations

import io
import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

pytestmark = pytest.mark.monailabel

#: Cheap settings, as in test_app_api.py (occlusion saliency: Grad-CAM does not lie on this segmenter's tumour).
FAST = {"explain_rex": {"iterations": 3}, "explain_saliency": {"method": "occlusion"}, "explain_dea": {},
        "counterfactual": {}}


@pytest.fixture(scope="module")
def client(pacs_server, tmp_path_factory):
    from monailabel.client import MONAILabelClient

    return MONAILabelClient(pacs_server.url, tmpdir=str(tmp_path_factory.mktemp("client")))


@pytest.fixture(scope="module")
def flair(pacs_study) -> str:
    """The image id of the tests: the FLAIR series (any of the four would do)."""
    return pacs_study["series"]["FLAIR"]


def infer(client, task: str, image: str, params: dict | None = None) -> tuple[sitk.Image, dict]:
    path, reply = client.infer(task, image, params or {})
    return sitk.ReadImage(path), reply


def refused(client, image: str, task: str = "segmentation") -> tuple[int, str]:
    """Status and message of a request the server must refuse (the client raises on any non-200)."""
    from monailabel.client.client import MONAILabelClientException

    with pytest.raises(MONAILabelClientException) as caught:
        client.infer(task, image, {})
    text = str(caught.value.msg)
    status = int(text.split("Status: ")[1].split(";")[0])
    detail = json.loads(text.split("Response: ", 1)[1])["detail"]
    return status, detail


def patient_grid(pacs_study) -> sitk.Image:
    patient = pacs_study["patient"]
    return patient.image(patient.label.astype(np.uint8))


def same_grid(image: sitk.Image, reference: sitk.Image) -> bool:
    return (image.GetSize() == reference.GetSize() and np.allclose(image.GetSpacing(), reference.GetSpacing())
            and np.allclose(image.GetOrigin(), reference.GetOrigin(), atol=1e-3)
            and np.allclose(image.GetDirection(), reference.GetDirection()))


@pytest.fixture(scope="module")
def segmentation(client, flair, pacs_study):
    image, reply = infer(client, "segmentation", flair)
    return image, reply


def test_next_sample_is_an_mr_series_of_the_pacs(client, pacs_study):
    """The Slicer client's 'Next Sample': the MR series of studies holding all four sequences (not the FLAIR-only
    study)."""
    offered = {client.next_sample("random", {})["id"] for _ in range(6)}
    assert offered and offered <= set(pacs_study["series"].values()), offered


def test_segmentation_of_a_pacs_series_finds_the_tumour(segmentation, pacs_study):
    image, reply = segmentation
    truth_image = patient_grid(pacs_study)
    assert same_grid(image, truth_image), "the label must lie on the requested series' grid"
    predicted = sitk.GetArrayFromImage(image) == reply["label_names"]["tumour"]
    truth = sitk.GetArrayFromImage(truth_image) > 0
    dice = 2 * (predicted & truth).sum() / (predicted.sum() + truth.sum())
    print(f"\nsegmentation of the DICOM FLAIR series: Dice {dice:.3f} with the generated tumour")
    assert dice > 0.6, dice


@pytest.mark.parametrize("task", ["explain_rex", "explain_saliency", "explain_dea", "counterfactual"])
def test_explanations_of_a_pacs_series_lie_on_the_tumour(client, flair, segmentation, task):
    image, reply = infer(client, task, flair, FAST[task])
    assert same_grid(image, segmentation[0])
    values = sitk.GetArrayFromImage(image)
    tumour = sitk.GetArrayFromImage(segmentation[0]) > 0
    overlap = ((values > 0) & tumour).sum() / tumour.sum()
    # the most telling segment sits on the tumour, far denser there than elsewhere: the counterfactual's region,
    # else the hottest level drawn (rex's "outside the levels" remainder is by construction the explanation's
    # least responsible part: the explanation is checked whole below, drawn with draw=explanation)
    names = reply["label_names"]
    special = [name for name in names if name.endswith(" region")]
    top_name = special[0] if special else max((name for name in names if " level " in name), key=names.get)
    enrichment = _enrichment(values == names[top_name], tumour)
    print(f"\n{task} on the DICOM series: {overlap:.2f} of the predicted tumour covered; '{top_name}' "
          f"{enrichment:.1f}x denser in the tumour; score {reply['score']:.3f}")
    assert overlap > 0.2, (task, overlap)
    assert enrichment > 3, (task, top_name, enrichment)
    if task == "explain_rex":  # the hottest level, and the sufficient explanation whole (issue 25)
        assert reply["certificate"]["verdict"] == "pass", reply["certificate"]
        assert top_name == "rex level 5 of 5" and enrichment > 5, (top_name, enrichment)
        whole_image, whole = infer(client, task, flair, {**FAST[task], "draw": "explanation"})
        sufficient = sitk.GetArrayFromImage(whole_image) == whole["label_names"]["rex sufficient explanation"]
        whole_enrichment = _enrichment(sufficient, tumour)
        print(f"rex sufficient explanation whole: {sufficient.sum()} voxels, {whole_enrichment:.1f}x denser in the "
              "tumour")
        assert whole_enrichment > 3, whole_enrichment
    if task == "counterfactual":
        assert reply["delta_drop"] == pytest.approx(reply["p_orig"] - reply["p_remove"], abs=1e-6)


def _enrichment(segment: np.ndarray, tumour: np.ndarray) -> float:
    """How much denser ``segment`` is inside the tumour than the tumour is in the image (1 = no preference)."""
    return float(((segment & tumour).sum() / max(int(segment.sum()), 1)) / (tumour.sum() / tumour.size))


def _new_seg(orthanc, before: set[str]) -> pydicom.Dataset:
    after = {record["0020000E"]["Value"][0] for record in orthanc.series(Modality="SEG")}
    new = after - before
    assert len(new) == 1, (before, after)
    files = orthanc.series_files(new.pop())
    assert len(files) == 1
    return pydicom.dcmread(io.BytesIO(files[0]))


def _check_seg(seg: pydicom.Dataset, saved: sitk.Image, names: dict[str, int], flair: str, pacs_study) -> None:
    import pydicom_seg

    assert seg.Modality == "SEG" and seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert {s.SegmentNumber: s.SegmentLabel for s in seg.SegmentSequence} == {v: n for n, v in names.items()}
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == flair
    assert seg.StudyInstanceUID == pacs_study["study_uid"]
    assert len(seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence) == saved.GetSize()[2]
    back = pydicom_seg.MultiClassReader().read(seg).image
    assert same_grid(back, saved)
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(saved))


def test_saved_labels_arrive_in_the_pacs_as_dicom_seg_with_named_segments(client, orthanc, flair, pacs_study,
                                                                           segmentation, tmp_path):
    # the segmentation, named by the infer reply's label_names (what a client holds after /infer)
    image, reply = segmentation
    path = tmp_path / "tumour.seg.nrrd"
    sitk.WriteImage(image, str(path))
    before = {record["0020000E"]["Value"][0] for record in orthanc.series(Modality="SEG")}
    client.save_label(flair, str(path), tag="final",
                      params={"label_names": reply["label_names"], "label_colors": reply["label_colors"],
                              "task": "segmentation"})
    _check_seg(_new_seg(orthanc, before), image, reply["label_names"], flair, pacs_study)

    # an explanation as the server sent it, no params: the names come from the .seg.nrrd header
    rex_path, rex = client.infer("explain_rex", flair, {"iterations": 3})
    before = {record["0020000E"]["Value"][0] for record in orthanc.series(Modality="SEG")}
    client.save_label(flair, rex_path, tag="final", params={})
    seg = _new_seg(orthanc, before)
    _check_seg(seg, sitk.ReadImage(rex_path), rex["label_names"], flair, pacs_study)
    labels = [s.SegmentLabel for s in seg.SegmentSequence]
    assert labels[:5] == [f"rex level {k} of 5" for k in range(1, 6)]  # the core's five bands, in the PACS


def test_bad_requests_are_refused_with_one_message_and_the_server_keeps_serving(client, flair, pacs_study, orthanc,
                                                                               segmentation, tmp_path):
    sitk.WriteImage(segmentation[0], str(tmp_path / "tumour.seg.nrrd"))
    if not orthanc.series(Modality="SEG"):  # this test run alone: store a SEG to ask for
        client.save_label(flair, str(tmp_path / "tumour.seg.nrrd"), tag="final", params={})
    seg = orthanc.series(Modality="SEG")[0]["0020000E"]["Value"][0]
    cases = [
        ("1.2.826.0.1.3680043.10.1254.999999999", 404, "no series"),  # a UID the PACS does not hold
        (pacs_study["study_uid"], 404, "is a study, not a series"),
        (pacs_study["partial_series"], 422, "without a T1, T1c, T2 series"),  # the model cannot take it
        (seg, 422, "is a SEG object"),
    ]
    for image, status, words in cases:
        got, detail = refused(client, image)
        assert (got, words in detail, "\n" in detail) == (status, True, False), (image, got, detail)
        label, reply = infer(client, "segmentation", flair)  # still serving
        assert reply["label_names"] == {"tumour": 1} and sitk.GetArrayFromImage(label).any()
    # a label for a series the PACS does not hold is refused too, and nothing is stored
    from monailabel.client.client import MONAILabelClientException

    before = len(orthanc.series(Modality="SEG"))
    with pytest.raises(MONAILabelClientException, match="Status: 404"):
        client.save_label(cases[0][0], str(tmp_path / "tumour.seg.nrrd"), tag="final", params={})
    assert len(orthanc.series(Modality="SEG")) == before


def _stored(orthanc, series_uid: str) -> pydicom.Dataset:
    """The one instance of a stored series, found back through QIDO-RS (series-level search by UID)."""
    found = orthanc.series(SeriesInstanceUID=series_uid)
    assert [record["0020000E"]["Value"][0] for record in found] == [series_uid]
    files = orthanc.series_files(series_uid)
    assert len(files) == 1
    return pydicom.dcmread(io.BytesIO(files[0]))


def _frame_positions(dataset: pydicom.Dataset) -> list[tuple[float, ...]]:
    return [tuple(round(float(v), 3) for v in group.PlanePositionSequence[0].ImagePositionPatient)
            for group in dataset.PerFrameFunctionalGroupsSequence]


def test_explain_request_stores_its_seg_and_parametric_maps_in_the_study(client, orthanc, flair, pacs_study, tmp_path):
    """Results back into the PACS (issue 25): an explain request on a PACS series leaves the explanation's DICOM
    SEG and its Parametric Maps (map, the segmenter's probability) in that series' study, referencing the series,
    one frame per source slice, the values those of the files kept beside the reply."""
    _, reply = infer(client, "explain_rex", flair, {"iterations": 3})
    stored = reply["stored_in_pacs"]
    assert set(stored) == {"explanation_dicom", "map_dicom", "probability_dicom"}, stored
    source = patient_grid(pacs_study)
    slices = [tuple(round(v, 3) for v in source.TransformIndexToPhysicalPoint((0, 0, k)))
              for k in range(source.GetSize()[2])]
    study = {record["0020000E"]["Value"][0] for record in orthanc.series(StudyInstanceUID=pacs_study["study_uid"])}
    assert set(stored.values()) <= study
    seg = _stored(orthanc, stored["explanation_dicom"])
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == pacs_study["study_uid"]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == flair
    labels = [item.SegmentLabel for item in seg.SegmentSequence]
    assert labels[0] == "sufficient explanation" and "responsibility level 5" in labels
    assert set(_frame_positions(seg)) <= set(slices)
    for key, kept_key in (("map_dicom", "map_file"), ("probability_dicom", "probability_file")):
        pm = _stored(orthanc, stored[key])
        assert pm.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30" and pm.StudyInstanceUID == pacs_study["study_uid"]
        assert pm.ReferencedSeriesSequence[0].SeriesInstanceUID == flair
        assert _frame_positions(pm) == slices  # one frame per source slice, in order
        assert (int(pm.Rows), int(pm.Columns)) == (source.GetSize()[1], source.GetSize()[0])
        kept = sitk.GetArrayFromImage(sitk.ReadImage(reply[kept_key]))
        np.testing.assert_allclose(pm.pixel_array, kept, atol=1e-6)
    probability = _stored(orthanc, stored["probability_dicom"]).pixel_array
    tumour = sitk.GetArrayFromImage(source) > 0
    print(f"\nstored in the PACS: {sorted(stored)}; probability {probability[tumour].mean():.2f} in the tumour, "
          f"{probability[~tumour].mean():.4f} outside")
    assert probability[tumour].mean() > 0.5 > probability[~tumour].mean()
