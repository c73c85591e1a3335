"""Fixtures: a real MONAI Label server over the voxcause app, started once for the tests of this folder.

The server runs as its own process (``python -m monailabel.main start_server``) on a free port of
127.0.0.1, over a studies folder of sample patients made by `voxcause.samples`; see ml_server.py.
Without the MONAI Label environment (``.ci/setup_monailabel.sh`` builds ``.venv-monailabel``) every test
here is skipped with that reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from dicom_case import Orthanc, dicomweb_plugin, orthanc_binary, start_orthanc, write_dicom_study
from ml_server import CASES, HAVE_MONAILABEL, MAX_UPLOAD_MB, Server, free_port, launch, stop, write_case


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAVE_MONAILABEL:
        return
    skip = pytest.mark.skip(reason="needs the MONAI Label environment: run .ci/setup_monailabel.sh, then "
                            ".venv-monailabel/bin/python -m pytest tests/monailabel")
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ml") / "studies"
    folder.mkdir()
    for image_id, seed, kind in CASES:
        write_case(folder, image_id, seed, kind)
    return folder


@pytest.fixture(scope="session")
def server(studies: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("server")
    conf = {"models": "all", "max_upload_mb": str(MAX_UPLOAD_MB)}
    # e.g. VOXCAUSE_ML_CONF="segmenter=/models/seg/card.json;classifier=/models/cls/card.json" (own models)
    for pair in filter(None, os.environ.get("VOXCAUSE_ML_CONF", "").split(";")):
        key, _, value = pair.partition("=")
        conf[key.strip()] = value.strip()
    running = launch(str(studies), work, conf, files_at=studies)
    try:
        yield running
    finally:
        stop(running.process)


#: The PACS round trip must run (CI); VOXCAUSE_REQUIRE_ORTHANC=0 lets it skip where Orthanc is not installed.
REQUIRE_ORTHANC = os.environ.get("VOXCAUSE_REQUIRE_ORTHANC", "1") != "0"


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """A private Orthanc (DICOMweb plugin) on free ports of 127.0.0.1, temporary storage; stopped after the module
    (module-scoped like the PACS server, so neither idles through the other test files)."""
    binary, plugin = orthanc_binary(), dicomweb_plugin()
    if binary is None or plugin is None or not plugin.exists():
        missing = "the Orthanc binary" if binary is None else "Orthanc's DICOMweb plugin (orthanc-dicomweb)"
        message = f"{missing} is not installed — run .ci/setup_orthanc.sh as root"
        if REQUIRE_ORTHANC:
            pytest.fail(f"{message} (or set VOXCAUSE_REQUIRE_ORTHANC=0 to skip the PACS tests)")
        pytest.skip(f"{message}; VOXCAUSE_REQUIRE_ORTHANC=0")
    work = tmp_path_factory.mktemp("orthanc")
    server = start_orthanc(work, http_port=free_port(), dicom_port=free_port(), binary=binary, plugin=plugin)
    try:
        yield server
    finally:
        stop(server.process)


@pytest.fixture(scope="module")
def pacs_study(orthanc: Orthanc, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A sample patient (the glioma case) as a 4-series MR study in the PACS, plus a second study holding only its
    FLAIR (a series the model cannot take: the other sequences are missing)."""
    from voxcause.samples import make_patient

    image_id, seed, kind = CASES[0]
    patient = make_patient(seed, kind)
    folder = tmp_path_factory.mktemp("dicom")
    study = write_dicom_study(patient, folder / "full", patient_id="VOXCAUSE-1")
    partial = write_dicom_study(patient, folder / "partial", patient_id="VOXCAUSE-2", sequences=("FLAIR",))
    for written in (study, partial):
        orthanc.upload([path for key, item in written.items() if key != "study" for path in item["files"]])
    return {"patient": patient, "study_uid": study["study"]["study_uid"],
            "series": {name: item["series_uid"] for name, item in study.items() if name != "study"},
            "partial_series": partial["FLAIR"]["series_uid"]}


@pytest.fixture(scope="module")
def pacs_server(orthanc: Orthanc, pacs_study: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The MONAI Label server with ``--studies <orthanc>/dicom-web``; its kept files go under its work folder."""
    work = tmp_path_factory.mktemp("pacs-server")
    running = launch(orthanc.dicomweb, work, {"models": "all", "output_dir": str(work / "voxcause")}, files_at=work,
                     env={"MONAI_LABEL_DATASTORE_CACHE_PATH": str(work / "cache")})
    try:
        yield running
    finally:
        stop(running.process)


@pytest.fixture(scope="session")
def info(server: Server) -> dict:
    return server.get("/info/").json()


