"""A sample patient as a DICOM study, and a private Orthanc PACS to hold it (tests of the DICOMweb path).

`write_dicom_study` writes each MR sequence of a `voxcause.samples` patient as its own DICOM series with the
core's writer (one file per slice; one study, one frame of reference, SeriesDescription = the sequence
name). `start_orthanc` starts Debian's Orthanc on 127.0.0.1 with its own JSON configuration (free HTTP and
DICOM ports, temporary storage and index folders, the DICOMweb plugin, no remote access, no authentication);
the fixture stops it afterwards.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

#: Where Debian's orthanc-dicomweb package puts the plugin (checked in this order; `dpkg -L` as a fallback).
PLUGIN_GLOBS = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so*", "/usr/lib/orthanc/libOrthancDicomWeb.so*")


def write_dicom_study(patient, folder: Path, *, patient_id: str, sequences: tuple[str, ...] | None = None
                      ) -> dict[str, dict]:
    """The patient's sequences (all, or ``sequences``) as MR series of one study, written by the core
    (`voxcause.io.dicom_series.write_patient_dicom`).

    Returns ``{sequence: {"series_uid", "files"}}`` plus ``"study": {"study_uid"}``.
    """
    import pydicom
    from voxcause.io.dicom_series import write_patient_dicom

    folders = write_patient_dicom(patient, folder, channels=list(sequences) if sequences else None,
                                  patient_id=patient_id)
    out: dict[str, dict] = {}
    for name, series_folder in folders.items():
        files = sorted(Path(series_folder).glob("*.dcm"))
        first = pydicom.dcmread(str(files[0]), stop_before_pixels=True)
        out[name] = {"series_uid": str(first.SeriesInstanceUID), "files": files}
    out["study"] = {"study_uid": str(first.StudyInstanceUID)}
    return out


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if os.path.exists(p)),
                                           None)


def dicomweb_plugin() -> Path | None:
    """The DICOMweb plugin of Debian's orthanc-dicomweb (``VOXCAUSE_ORTHANC_PLUGIN`` overrides)."""
    if os.environ.get("VOXCAUSE_ORTHANC_PLUGIN"):
        return Path(os.environ["VOXCAUSE_ORTHANC_PLUGIN"])
    for pattern in PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return Path(found[0])
    try:
        listed = subprocess.run(["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True, encoding="utf-8",
                                check=False).stdout
    except OSError:
        return None
    return next((Path(line) for line in listed.splitlines() if "libOrthancDicomWeb.so" in line), None)


@dataclass
class Orthanc:
    """A running private Orthanc: REST at ``url``, DICOMweb at ``dicomweb``."""

    url: str
    process: subprocess.Popen
    log: Path

    @property
    def dicomweb(self) -> str:
        return self.url + "/dicom-web"

    def upload(self, files: list[Path]) -> None:
        """Store DICOM files through Orthanc's REST API (``POST /instances``)."""
        import requests

        with requests.Session() as session:
            for path in files:
                response = session.post(self.url + "/instances", data=path.read_bytes(),
                                        headers={"content-type": "application/dicom"}, timeout=60)
                response.raise_for_status()

    def series(self, **filters: str) -> list[dict]:
        """QIDO-RS series records (DICOM JSON) matching ``filters`` (e.g. Modality="SEG")."""
        import requests

        response = requests.get(self.dicomweb + "/series", params={**filters, "includefield": "all"}, timeout=60)
        response.raise_for_status()
        return response.json() if response.content else []

    def series_files(self, series_uid: str) -> list[bytes]:
        """The DICOM files of a series, through the REST API (``/tools/lookup`` -> ``/instances/<id>/file``)."""
        import requests

        found = requests.post(self.url + "/tools/lookup", data=series_uid, timeout=60).json()
        ids = [item["ID"] for item in found if item.get("Type") == "Series"]
        files = []
        for series_id in ids:
            for instance in requests.get(f"{self.url}/series/{series_id}/instances", timeout=60).json():
                files.append(requests.get(f"{self.url}/instances/{instance['ID']}/file", timeout=60).content)
        return files

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def start_orthanc(work: Path, *, http_port: int, dicom_port: int, binary: str, plugin: Path,
                  timeout: float = 60) -> Orthanc:
    """Orthanc on 127.0.0.1 with its own configuration and temporary storage under ``work``; waits until
    its REST API and the DICOMweb plugin answer."""
    import requests

    work.mkdir(parents=True, exist_ok=True)
    config = {
        "Name": "voxcause-test", "HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": "VOXCAUSETEST",
        "StorageDirectory": str(work / "storage"), "IndexDirectory": str(work / "index"),
        "Plugins": [str(plugin)], "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
    }
    (work / "orthanc.json").write_text(json.dumps(config, indent=2))
    log = work / "orthanc.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen([binary, str(work / "orthanc.json")], stdout=sink, stderr=subprocess.STDOUT,
                                   cwd=work, start_new_session=True)
    server = Orthanc(url=f"http://127.0.0.1:{http_port}", process=process, log=log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"Orthanc exited with {process.returncode}:\n{server.log_tail()}")
        try:
            if requests.get(server.dicomweb + "/studies", timeout=5).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"Orthanc not ready after {timeout:.0f} s:\n{server.log_tail()}")
        time.sleep(0.2)
