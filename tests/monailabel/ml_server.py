"""Helpers for the MONAI Label app tests: starting a real server, calling it, reading its replies.

The server runs as its own process (``python -m monailabel.main start_server``) on a free port of
127.0.0.1, over a studies folder of sample patients made by `voxcause.samples`. The fixture waits until
``/info/`` answers, and on teardown stops the whole process group. Everything here needs the MONAI Label
environment (``.ci/setup_monailabel.sh`` builds ``.venv-monailabel``); elsewhere the folder is skipped.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk


def _installed(name: str) -> bool:
    """A real installed package (this test folder is itself called monailabel: a namespace match is not one)."""
    spec = importlib.util.find_spec(name)
    return spec is not None and spec.origin is not None


#: The MONAI Label environment is present (else every test here skips with that reason).
HAVE_MONAILABEL = all(_installed(name) for name in ("monailabel", "requests", "psutil"))
if HAVE_MONAILABEL:
    import psutil
    import requests
    from requests_toolbelt.multipart.decoder import MultipartDecoder
else:  # the tests skip; names stay importable
    psutil = requests = MultipartDecoder = None

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "monailabel_app"
#: Sample cases of the studies folder: (image id, seed, kind); held-out seeds (training uses 0..N-1).
CASES = (("glioma_200000", 200_000, "glioma"), ("meningioma_100001", 100_001, "meningioma"))
STARTUP_SECONDS = float(os.environ.get("VOXCAUSE_ML_STARTUP", "600"))
#: Upload limit the test server runs with, so an 'oversized' upload stays small.
MAX_UPLOAD_MB = 4
#: Verdicts of an explanation's certificate (voxcause.certificate).
VERDICTS = ("pass", "weak", "fail")


def app_module(name: str):
    """A module of the MONAI Label app (``lib.labels`` ...), imported as the server imports it; skips the test
    outside the MONAI Label environment."""
    if not HAVE_MONAILABEL:
        pytest.skip("needs the MONAI Label environment")
    sys.path.insert(0, str(APP))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(APP))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_case(folder: Path, image_id: str, seed: int, kind: str) -> Path:
    """One sample patient: ``<studies>/<id>.nii.gz`` (4-channel vector NIfTI: T1, T1c, T2, FLAIR); its
    per-sequence files and ground-truth label go to ``<studies>/../patients/<id>/`` (outside the studies)."""
    from voxcause.samples import make_patient, write_patient

    patient = make_patient(seed, kind)
    paths = write_patient(patient, folder.parent / "patients" / image_id, prefix=image_id)
    target = folder / f"{image_id}.nii.gz"
    shutil.copyfile(paths["multichannel"], target)
    return target


def truth_path(studies: Path, image_id: str) -> Path:
    """The ground-truth (BraTS-style) label of a case written by `write_case`."""
    return studies.parent / "patients" / image_id / f"{image_id}_label.nii.gz"


@dataclass
class Reply:
    """One /infer reply: status, JSON params (or error detail), label file bytes and name."""

    status: int
    params: dict
    label: bytes | None
    filename: str | None
    seconds: float
    text: str

    @classmethod
    def of(cls, response: requests.Response) -> Reply:
        seconds = response.elapsed.total_seconds()
        kind = response.headers.get("content-type", "")
        if response.status_code != 200 or not kind.startswith("multipart"):
            try:
                params = response.json()
            except ValueError:
                params = {}
            return cls(response.status_code, params if isinstance(params, dict) else {}, None, None, seconds,
                       response.text[:2000])
        params, label, filename = {}, None, None
        for part in MultipartDecoder.from_response(response).parts:
            disposition = part.headers.get(b"Content-Disposition", b"").decode()
            if 'name="params"' in disposition:
                params = json.loads(part.content)
            else:
                label = part.content
                if "filename=" in disposition:
                    filename = disposition.split("filename=")[-1].strip('"')
        return cls(response.status_code, params, label, filename, seconds, "")


@dataclass
class Server:
    """A running server: its base URL, process, studies folder and log file."""

    url: str
    process: subprocess.Popen
    studies: Path
    log: Path

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=kwargs.pop("timeout", 120), **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.url + path, timeout=kwargs.pop("timeout", 600), **kwargs)

    def put(self, path: str, **kwargs) -> requests.Response:
        return requests.put(self.url + path, timeout=kwargs.pop("timeout", 600), **kwargs)

    def infer(self, model: str, image: str = "", *, params: dict | None = None, files: dict | None = None,
              session_id: str = "", timeout: float = 600) -> Reply:
        """POST /infer/<model>; the multipart reply split into its JSON params and label file."""
        data = {"params": json.dumps(params or {})}
        query = {key: value for key, value in (("image", image), ("session_id", session_id)) if value}
        response = self.post(f"/infer/{model}", params=query or None, data=data, files=files, timeout=timeout)
        return Reply.of(response)

    def rss_bytes(self) -> int:
        """Resident memory of the server process and its children (batch workers)."""
        main = psutil.Process(self.process.pid)
        total = main.memory_info().rss
        for child in main.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += child.memory_info().rss
        return total

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def read_label(content: bytes, suffix: str, tmp_path: Path) -> sitk.Image:
    path = tmp_path / f"result{suffix}"
    path.write_bytes(content)
    return sitk.ReadImage(str(path))


def label_values(image: sitk.Image) -> list[int]:
    return sorted(int(v) for v in np.unique(sitk.GetArrayFromImage(image)) if v != 0)


def core_segments(path: Path) -> dict[str, np.ndarray]:
    """The named masks of a (possibly multi-layer) ``.seg.nrrd`` the core wrote, on the numpy (z, y, x) grid."""
    import slicerio

    segmentation = slicerio.read_segmentation(str(path))
    masks = {}
    for segment in segmentation["segments"]:
        extracted = slicerio.extract_segments(segmentation, [(segment["name"], 1)])
        masks[segment["name"]] = np.asarray(extracted["voxels"]).transpose() == 1
    return masks


def assert_certificate(params: dict) -> dict:
    """The reply carries the core's certificate at the top level; a verdict other than pass is also a warning."""
    certificate = params.get("certificate")
    assert isinstance(certificate, dict), sorted(params)
    assert certificate["verdict"] in VERDICTS, certificate
    assert isinstance(certificate["reason"], str) and certificate["reason"], certificate
    checks = certificate["checks"]
    assert isinstance(checks, list) and checks, certificate
    for check in checks:
        assert {"name", "value", "threshold", "passed"} <= set(check), check
        assert isinstance(check["passed"], bool), check
    warnings = params["warnings"]
    stated = [line for line in warnings if line.startswith(f"certificate {certificate['verdict']}:")]
    if certificate["verdict"] == "pass":
        assert not [line for line in warnings if line.startswith("certificate ")], warnings
    else:
        assert stated and certificate["reason"] in stated[0], (certificate, warnings)
    return certificate


def launch(studies: str, work: Path, conf: dict[str, str], *, files_at: Path, env: dict[str, str] | None = None,
           start_script: Path | None = None, probe_headers: dict[str, str] | None = None) -> Server:
    """``python -m monailabel.main start_server`` (or ``bash start_script STUDIES``, e.g. scripts/start_monailabel.sh)
    over ``studies`` (a folder or a DICOMweb URL) on a free port of 127.0.0.1; returns once ``/info/`` answers
    (asked with ``probe_headers``, e.g. a sign-in token), else fails the test with the server log."""
    port = free_port()
    log = work / "server.log"
    environment = dict(os.environ)
    environment.update({
        "MONAI_LABEL_SESSION_PATH": str(work / "sessions"),
        "OMP_NUM_THREADS": environment.get("OMP_NUM_THREADS", "2"),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    })
    command = ([sys.executable, "-m", "monailabel.main", "start_server", "--app", str(APP), "--studies", studies]
               if start_script is None else ["bash", str(start_script), studies])
    command += ["--host", "127.0.0.1", "--port", str(port)]
    for key, value in conf.items():
        command += ["--conf", key, value]
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=work, env=environment,
                                   start_new_session=True)
    running = Server(url=f"http://127.0.0.1:{port}", process=process, studies=files_at, log=log)
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode} while starting:\n{running.log_tail()}")
        try:
            if running.get("/info/", timeout=5, headers=probe_headers).status_code == 200:
                return running
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            stop(process)
            pytest.fail(f"server not ready after {STARTUP_SECONDS:.0f} s:\n{running.log_tail()}")
        time.sleep(0.5)
