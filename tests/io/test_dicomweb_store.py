"""``voxcause explain --dicom --store URL``: the DICOM SEG and Parametric Maps go into a real DICOMweb server
(Debian's Orthanc with its DICOMweb plugin, .ci/setup_orthanc.sh) in the source's study, found back by QIDO-RS."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import requests

pytest.importorskip("highdicom")  # and pydicom 3 (the "dicom" extra)
import pydicom  # noqa: E402
from voxcause.cli.main import main  # noqa: E402
from voxcause.io.dicom_series import write_patient_dicom  # noqa: E402
from voxcause.samples import make_patient, model_path  # noqa: E402
from voxcause.samples.training import HELDOUT_SEED_BASE  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "monailabel"))
from dicom_case import dicomweb_plugin, orthanc_binary, start_orthanc  # noqa: E402

SEQUENCES = ("T1", "T1c", "T2", "FLAIR")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    binary, plugin = orthanc_binary(), dicomweb_plugin()
    if binary is None or plugin is None or not plugin.exists():
        pytest.skip("Orthanc with its DICOMweb plugin is not installed — run .ci/setup_orthanc.sh as root")
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"), http_port=ports[0], dicom_port=ports[1], binary=binary,
                           plugin=plugin)
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


def test_cli_store_puts_seg_and_maps_in_the_source_study(orthanc, tmp_path, capsys):
    patient = make_patient(HELDOUT_SEED_BASE, "glioma")
    series = write_patient_dicom(patient, tmp_path / "study", uid_seed="voxcause-test-store")
    source = pydicom.dcmread(sorted(series["T1"].glob("*.dcm"))[0], stop_before_pixels=True)
    code = main(["explain", *(str(series[name]) for name in SEQUENCES), "--model", str(model_path("segmenter3d")),
                 "--method", "seggradcam", "--threads", "1", "--store", orthanc.dicomweb, "--out", str(tmp_path / "out"),
                 "--progress", "none"])
    assert code == 0
    printed = capsys.readouterr().out
    volumes = json.loads((tmp_path / "out" / "summary.json").read_text())["volumes"]
    written = {key: volumes[key] for key in ("explanation_dicom", "map_dicom", "probability_dicom")}
    found = requests.get(f"{orthanc.dicomweb}/studies/{source.StudyInstanceUID}/series",
                         params={"includefield": "all"}, timeout=60).json()
    stored = {record["0020000E"]["Value"][0]: record["00080060"]["Value"][0] for record in found}
    for key, name in written.items():
        local = pydicom.dcmread(tmp_path / "out" / name, stop_before_pixels=True)
        assert stored.get(local.SeriesInstanceUID) == local.Modality, (key, stored)
        assert local.StudyInstanceUID == source.StudyInstanceUID
        assert local.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
        assert f"{name} (series {local.SeriesInstanceUID})" in printed
    # the stored map is the written one: fetch it back whole (WADO-RS through Orthanc's REST API)
    pm = pydicom.dcmread(io.BytesIO(orthanc.series_files(
        pydicom.dcmread(tmp_path / "out" / written["probability_dicom"]).SeriesInstanceUID)[0]))
    assert pm.NumberOfFrames == patient.channels.shape[1]
    assert (pm.Rows, pm.Columns) == patient.channels.shape[2:]


def test_store_url_must_be_dicomweb(tmp_path, capsys):
    code = main(["explain", str(tmp_path / "missing"), "--model", str(model_path("segmenter3d")), "--store",
                 "pacs:8042", "--out", str(tmp_path / "out")])
    assert code == 2 and "is not a DICOMweb URL" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
