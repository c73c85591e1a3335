"""Storing voxcause's DICOM objects in a DICOMweb server (STOW-RS), so any PACS viewer shows them beside the study.

`store_instances` posts the explanation's DICOM SEG and Parametric Maps (`voxcause.io.dicom_out`: they carry the
source's Study and reference its series, so the server files them in that study) as one
``multipart/related; type="application/dicom"`` request to ``<root>/studies``. Standard library only: the
batch user's ``voxcause explain --dicom --store URL`` needs no DICOMweb client package.
"""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError

TIMEOUT_SECONDS = 120


def check_store_url(url: str) -> str:
    """The DICOMweb root without a trailing slash, or a one-line `InputError` naming the form it takes."""
    if not url.startswith(("http://", "https://")):
        raise InputError(f"--store {url!r} is not a DICOMweb URL — pass the server's DICOMweb root, e.g. "
                         "http://pacs:8042/dicom-web")
    return url.rstrip("/")


def store_instances(url: str, files: Sequence[str | Path]) -> list[str]:
    """STOW-RS ``files`` (DICOM Part 10) to the DICOMweb root ``url``; the SeriesInstanceUIDs stored, in order.

    Raises:
        InputError: the server cannot be reached or refuses the objects (its HTTP status and reason).
    """
    import pydicom

    root = check_store_url(url)
    boundary = uuid.uuid4().hex
    parts, series = [], []
    for path in files:
        series.append(str(pydicom.dcmread(str(path), stop_before_pixels=True).SeriesInstanceUID))
        parts.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + Path(path).read_bytes()
                     + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{root}/studies", data=body, method="POST",
        headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                 "Accept": "application/dicom+json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            response.read()
    except urllib.error.HTTPError as error:
        raise InputError(f"the DICOMweb server {root} refused the DICOM objects (HTTP {error.code} {error.reason}) "
                         "— check that --store names its DICOMweb root and that it accepts STOW-RS") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise InputError(f"cannot reach the DICOMweb server {root} ({reason}) — check the --store URL; the results "
                         "are written") from None
    return series
