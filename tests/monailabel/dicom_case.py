"""A sample patient as a DICOM study, and a private Orthanc PACS to hold it (tests of the DICOMweb path).

`write_dicom_study` writes each MR sequence of a `voxcause.samples` patient as its own DICOM series (one
file per slice, SimpleITK/GDCM; one study, one frame of reference, SeriesDescription = the sequence name,
the float intensities scaled into int16). `Orthanc` starts Debian's Orthanc on
127.0.0.1 with its own JSON configuration (free HTTP and DICOM ports, temporary storage and index folders,
the DICOMweb plugin, no remote access, no authentication) and stops it afterwards.
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

import numpy as np
import SimpleITK as sitk

#: Where Debian's orthanc-dicomweb package puts the plugin (checked in this order; `dpkg -L` as a fallback).
PLUGIN_GLOBS = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so*", "/usr/lib/orthanc/libOrthancDicomWeb.so*")
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
UID_ROOT = "1.2.826.0.1.3680043.10.1254."  # a test root; uids below are made unique with uuid4 ints


def new_uid() -> str:
    import uuid

    return (UID_ROOT + str(uuid.uuid4().int))[:64]


def write_dicom_series(image: sitk.Image, folder: Path, *, study_uid: str, series_uid: str, frame_uid: str,
                       patient_id: str, description: str, series_number: int) -> list[Path]:
    """One DICOM file per slice of a 3D scalar image; the geometry is kept (positions, orientation, spacing)."""
    folder.mkdir(parents=True, exist_ok=True)
    # int16 without rescale tags (classic MR has no rescale module; GDCM would move it into functional
    # groups): the arbitrary MR units are scaled to fill int16 — the models z-score every channel
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    scale = 30000.0 / max(float(np.abs(array).max()), 1e-6)
    stored = sitk.GetImageFromArray(np.round(array * scale).astype(np.int16))
    stored.CopyInformation(image)
    direction = image.GetDirection()
    orientation = "\\".join(f"{v:.6f}" for v in (direction[0], direction[3], direction[6],
                                                 direction[1], direction[4], direction[7]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    common = {
        "0008|0016": MR_IMAGE_STORAGE, "0008|0060": "MR", "0008|0020": "20260101", "0008|0030": "120000",
        "0010|0010": f"VOXCAUSE^{patient_id}", "0010|0020": patient_id, "0020|000d": study_uid,
        "0020|000e": series_uid, "0020|0052": frame_uid, "0008|103e": description,
        "0020|0011": str(series_number), "0020|0010": "1", "0008|0050": patient_id[:16],
        "0020|0037": orientation, "0018|0050": f"{image.GetSpacing()[2]:.6f}",
    }
    files = []
    for index in range(stored.GetDepth()):
        slice_image = stored[:, :, index]
        for key, value in common.items():
            slice_image.SetMetaData(key, value)
        position = image.TransformIndexToPhysicalPoint((0, 0, index))
        slice_image.SetMetaData("0020|0032", "\\".join(f"{v:.6f}" for v in position))
        slice_image.SetMetaData("0020|0013", str(index + 1))
        slice_image.SetMetaData("0008|0018", new_uid())
        path = folder / f"{index:04d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(slice_image)
        files.append(path)
    return files


def write_dicom_study(patient, folder: Path, *, patient_id: str, sequences: tuple[str, ...] | None = None
                      ) -> dict[str, dict]:
    """The patient's sequences (all, or ``sequences``) as series of one study.

    Returns ``{sequence: {"series_uid", "files"}}`` plus ``"study_uid"``.
    """
    study_uid, frame_uid = new_uid(), new_uid()
    out: dict[str, dict] = {"study": {"study_uid": study_uid, "frame_uid": frame_uid}}
    for index, sequence in enumerate(patient.sequences):
        if sequences is not None and sequence not in sequences:
            continue
        series_uid = new_uid()
        files = write_dicom_series(patient.image(patient.channels[index]), folder / sequence, study_uid=study_uid,
                                   series_uid=series_uid, frame_uid=frame_uid, patient_id=patient_id,
                                   description=sequence, series_number=index + 1)
        out[sequence] = {"series_uid": series_uid, "files": files}
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
        listed = subprocess.run(["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True, check=False).stdout
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
