"""Request checks that MONAI Label 0.8.5 leaves to the app, answered with 4xx and a message.

MONAI Label's own ``/infer`` path turns every error into a bare 500, and it treats an ``image`` value that
exists as a path on the server as that file (``MONAILabelApp.infer``: ``if os.path.exists(image_id)``), so
``?image=../../etc/passwd`` would be read. The app therefore checks each request before MONAI Label
looks it up:

- an image is either a plain id known to the studies (request ``params`` may override ``image``, so the check
  runs on the final request; 400 for a path, 404 for an unknown id; on a DICOMweb server the id is a
  SeriesInstanceUID, and a series the models cannot take is refused by lib/dicomweb.py with 422), or exactly
  the file the app stored for this request — its upload or its session's image, as recorded on the request's
  `Job` (lib/jobs.py). Any other path is refused with the same 400 whether or not a file is there, so the
  answer tells nothing about other users' files;
- a ``label`` is exactly the file uploaded with this request (form field ``label``), else 400;
- an upload's (or a session image's) header must promise at most ``max_voxels`` voxels, checked before any voxel is read (413);
  a file whose header cannot be read is refused with 415 (its size was checked as it was stored:
  lib/serving.py);
- anything the tasks refuse as `voxcause.errors.InputError` (wrong shape, bad option values, a target the
  model does not have) becomes 422 with the same one-line message.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import SimpleITK as sitk
from fastapi import HTTPException
from voxcause.errors import InputError

from .boundary import shown
from .jobs import Job
from .settings import AppSettings

_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def _looks_like_path(image: str) -> bool:
    return any(mark in image for mark in ("/", "\\", "..")) or image.startswith(("~", ".")) or os.path.isabs(image)


def check_upload(path: Path, settings: AppSettings) -> None:
    """Refuse an uploaded image whose header promises too many voxels, or is unreadable, before reading voxels."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise HTTPException(
            status_code=415,
            detail="the uploaded file is not a readable image — upload NIfTI (.nii/.nii.gz), NRRD or MHA "
            "with a matching file name extension",
        ) from None
    voxels = math.prod(reader.GetSize()) * max(1, reader.GetNumberOfComponents())
    if voxels > settings.max_voxels:
        raise HTTPException(
            status_code=413,
            detail=f"the uploaded image has {voxels:,} voxels, above the server's limit of {settings.max_voxels:,} "
            "— downsample or crop it, or raise --conf max_voxels",
        )


def check_request(request: dict[str, Any], datastore: Any, settings: AppSettings, *, job: Job | None) -> None:
    """Check the ``image`` and ``label`` of an infer request (see the module docstring); raise HTTPException if bad.

    ``job`` is the request's `Job` (None outside the app's /infer endpoint: batch inference, the command line),
    which records the files the server stored for it; a client can put any key in ``params``, ``image`` and
    ``label`` included, so nothing else in the request is taken as an upload.
    """
    level = request.get("logging")
    if level is not None and str(level).upper() not in _LOG_LEVELS:
        raise HTTPException(status_code=422, detail=f"logging={shown(level)} is not a log level — use one of "
                            f"{', '.join(sorted(_LOG_LEVELS))}")
    label = request.get("label")
    if label is not None and (job is None or label != job.label_path):
        raise HTTPException(status_code=400, detail="'label' must be a file uploaded with the request (form field "
                            "'label'), not a value in params")
    image = request.get("image")
    if not isinstance(image, str):
        return  # arrays handed over by a pipeline inside the server
    if job is not None and image in (job.upload_path, job.session_image):
        if Path(image).is_file():  # a session may hold a DICOM folder, which ReadVolume checks as it reads
            check_upload(Path(image), settings)
        return
    if not image:
        raise HTTPException(status_code=400, detail="no image given — pass ?image=<id> or upload a file")
    if _looks_like_path(image):
        raise HTTPException(
            status_code=400,
            detail=f"image {shown(image)} is a path, not an image id — pass the id of an image in the studies folder "
            "(GET /datastore/?output=all lists them) or upload the file",
        )
    uri = datastore.get_image_uri(image)
    if not uri:
        hint = getattr(datastore, "not_found_hint", None)  # the DICOMweb datastore (lib/dicomweb.py)
        detail = hint(image) if hint else (f"no image with id {shown(image)} in the studies folder — GET "
                                           "/datastore/?output=all lists the ids")
        raise HTTPException(status_code=404, detail=detail)


@contextmanager
def input_errors_as_422() -> Iterator[None]:
    """Turn `InputError` (the core's and the tasks' 'you can fix this' error) into HTTP 422."""
    try:
        yield
    except InputError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
