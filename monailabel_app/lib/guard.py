"""Request checks that MONAI Label 0.8.5 leaves to the app, answered with 4xx and a message.

MONAI Label's own ``/infer`` path turns every error into a bare 500, and it treats an ``image`` value that
exists as a path on the server as that file (``MONAILabelApp.infer``: ``if os.path.exists(image_id)``), so
``?image=../../etc/passwd`` would be read. The app therefore checks each request before MONAI Label
looks it up:

- an image id must be a plain name (request ``params`` may override ``image``, so the check runs on the
  final request) known to the studies (400 for a path, 404 for an unknown id; on a DICOMweb server the
  id is a SeriesInstanceUID, and a series the models cannot take is refused by lib/dicomweb.py with 422);
- an uploaded file (MONAI Label stores it as ``<tmp>/tmpXXXX<ext>``) must be at most ``max_upload_mb``
  and its header must promise at most ``max_voxels`` voxels, checked before any voxel is read (413);
  a file whose header cannot be read is refused with 415;
- anything the tasks refuse as `voxcause.errors.InputError` (wrong shape, bad option values, a target the
  model does not have) becomes 422 with the same one-line message.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import SimpleITK as sitk
from fastapi import HTTPException
from voxcause.errors import InputError

from .settings import AppSettings

_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
_UPLOAD_NAME = re.compile(r"^tmp[A-Za-z0-9_]+(\.[A-Za-z0-9]+){1,2}$")


def _is_upload(image: str) -> bool:
    """True for the temporary file MONAI Label's /infer endpoint writes an uploaded image to."""
    path = Path(image)
    return (
        path.is_absolute()
        and path.parent == Path(tempfile.gettempdir())
        and _UPLOAD_NAME.match(path.name) is not None
        and path.is_file()
    )


def _looks_like_path(image: str) -> bool:
    return any(mark in image for mark in ("/", "\\", "..")) or image.startswith(("~", ".")) or os.path.isabs(image)


def check_upload(path: Path, settings: AppSettings) -> None:
    """Refuse an uploaded image that is too large in bytes or voxels, or unreadable, before reading voxels."""
    size = path.stat().st_size
    if size > settings.max_upload_bytes:
        raise HTTPException(
            status_code=413,
            detail=f"upload is {size / 2**20:.1f} MiB, above the server's limit of "
            f"{settings.max_upload_bytes / 2**20:.0f} MiB — crop or downsample the image, "
            "or raise --conf max_upload_mb",
        )
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


def _inside(path: str, folder: str | None) -> bool:
    if not folder:
        return False
    real, root = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, root]) == root


def check_request(
    request: dict[str, Any], datastore: Any, settings: AppSettings, *, session_store: str | None = None
) -> None:
    """Check the ``image`` of an infer request (see the module docstring); raise HTTPException if bad.

    ``session_store`` is the folder of MONAI Label's sessions: a request naming a session gets that session's
    image path from the server, and only paths inside that folder are accepted as such (a client can put
    any key in ``params``, ``session`` and ``image`` included).
    """
    level = request.get("logging")
    if level is not None and str(level).upper() not in _LOG_LEVELS:
        raise HTTPException(status_code=422, detail=f"logging={level!r} is not a log level — use one of "
                            f"{', '.join(sorted(_LOG_LEVELS))}")
    label = request.get("label")
    if label is not None and not (isinstance(label, str) and _is_upload(label)):
        raise HTTPException(status_code=400, detail="'label' must be a file uploaded with the request (form field "
                            "'label'), not a value in params")
    image = request.get("image")
    if not isinstance(image, str):
        return  # arrays handed over by a pipeline inside the server
    if request.get("session") and _inside(image, session_store):
        return
    if not image:
        raise HTTPException(status_code=400, detail="no image given — pass ?image=<id> or upload a file")
    if _is_upload(image):
        check_upload(Path(image), settings)
        return
    if _looks_like_path(image):
        raise HTTPException(
            status_code=400,
            detail=f"image {image!r} is a path, not an image id — pass the id of an image in the studies folder "
            "(GET /datastore/?output=all lists them) or upload the file",
        )
    uri = datastore.get_image_uri(image)
    if not uri:
        hint = getattr(datastore, "not_found_hint", None)  # the DICOMweb datastore (lib/dicomweb.py)
        detail = hint(image) if hint else (f"no image with id {image!r} in the studies folder — GET "
                                           "/datastore/?output=all lists the ids")
        raise HTTPException(status_code=404, detail=detail)


@contextmanager
def input_errors_as_422() -> Iterator[None]:
    """Turn `InputError` (the core's and the tasks' 'you can fix this' error) into HTTP 422."""
    try:
        yield
    except InputError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
