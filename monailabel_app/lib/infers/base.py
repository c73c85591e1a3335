"""`VoxcauseInferTask`: a MONAI Label infer task whose stages call the voxcause core.

BasicInferTask runs ``pre_transforms -> run_inferer -> post_transforms -> writer`` and reports the time of
each stage in the reply's ``latencies``. Here:

- pre: `ReadVolume` reads the image with voxcause (NIfTI/NRRD/MHA/DICOM; 4D or vector files become
  channels) and checks it fits the model (channels, dimension, minimum size) before any model runs;
- inferer: `compute` (per task) runs the core with the model held for this request only;
- post: `segments` (per task) turns the result into disjoint named, coloured masks;
- writer: the masks go out as a single-layer ``.seg.nrrd`` in the input's exact geometry, float maps and
  summaries are kept under ``<output_dir>/<image id>/<task>/``, and the numbers go in the JSON reply, with
  ``models``: which model of each role ran (name, source; an nnU-Net model's format, folds, mirroring ...).

Bad input raises `InputError` and leaves the server as a 422 with the core's one-line message.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import voxcause
from monailabel.interfaces.tasks.infer_v2 import InferType
from monailabel.tasks.infer.basic_infer import BasicInferTask
from voxcause.errors import InputError
from voxcause.io import Volume, write_segmentation

from ..catalog import describe_model
from ..guard import input_errors_as_422
from ..labels import Segments
from ..models import POOL
from ..options import OptionTable
from ..settings import AppSettings

logger = logging.getLogger(__name__)

#: Smallest spatial edge (voxels) an image may have; smaller ones are certainly not what the models take.
MIN_EDGE = 8


_FOLDER_LOCKS: dict[Path, threading.Lock] = {}
_FOLDER_LOCKS_GUARD = threading.Lock()


def _folder_lock(folder: Path) -> threading.Lock:
    with _FOLDER_LOCKS_GUARD:
        return _FOLDER_LOCKS.setdefault(folder, threading.Lock())


#: Reply keys ending so name DICOM files the app stores in the PACS (main.py; `dicom_files`).
DICOM_KEY_SUFFIX = "_dicom_file"


def dicom_files(folder: Path) -> dict[str, Path]:
    """``{<name>_dicom_file: path}`` of the DICOM objects written in ``folder`` (``explanation.seg.dcm`` ->
    ``explanation_dicom_file``), for the app to store in the PACS."""
    return {f"{path.name.split('.')[0]}{DICOM_KEY_SUFFIX}": path for path in sorted(folder.glob("*.dcm"))}


def _wanted(flag: Any) -> bool:
    """A client's boolean request field: JSON ``false``, or the strings ``false``/``0``/``no``, mean no."""
    return str(flag).strip().lower() not in ("false", "0", "no", "off")


class ReadVolume:
    """Pre-transform: ``data["image"]`` (path) -> ``data["volume"]`` (voxcause `Volume`), checked."""

    def __init__(self, *, channels: int | None, spatial_dims: int, max_voxels: int) -> None:
        self.channels = channels
        self.spatial_dims = spatial_dims
        self.max_voxels = max_voxels

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        image = data.get("image")
        if not isinstance(image, str) or not image:
            raise InputError("the request names no image — pass ?image=<id> or upload a file")
        volume = voxcause.read_image(image)
        shape = volume.spatial_shape
        if volume.spatial_dims != self.spatial_dims:
            raise InputError(
                f"image is {volume.spatial_dims}D with shape {list(shape)} but the models take {self.spatial_dims}D "
                f"volumes — send a {self.spatial_dims}D image (one 4D/vector file holds the channels)"
            )
        if self.channels is not None and volume.channels != self.channels:
            raise InputError(
                f"image has {volume.channels} channel(s) but the model takes {self.channels} — send one 4D or "
                f"vector image holding the {self.channels} sequences in the model card's order"
            )
        if min(shape) < MIN_EDGE:
            raise InputError(f"image shape {list(shape)} has an edge below {MIN_EDGE} voxels — send the whole volume")
        if volume.array.size > self.max_voxels:
            raise InputError(
                f"image has {volume.array.size:,} voxels, above the limit {self.max_voxels:,} — downsample it"
            )
        data["volume"] = volume
        return data


class VoxcauseInferTask(BasicInferTask):
    """Common stages of the app's tasks; subclasses give `compute`, `segments` and `numbers`."""

    #: Short unique prefix of the task's segment names (names are unique across the app).
    prefix: str = ""
    #: Whether `keep` writes files (float maps ...) into the output folder.
    keeps_files: bool = False

    def __init__(
        self,
        *,
        name: str,
        settings: AppSettings,
        model_paths: dict[str, Path | None],
        labels: dict[str, int],
        options: OptionTable,
        description: str,
        channels: int | None,
        spatial_dims: int = 3,
    ) -> None:
        self.name = name
        self.settings = settings
        self.model_paths = model_paths
        self.options = options
        self.channels = channels
        self.spatial_dims = spatial_dims
        super().__init__(
            path=None,
            network=None,
            type=InferType.SEGMENTATION,
            labels=labels,
            dimension=spatial_dims,
            description=description,
            config=options.config(),
        )

    # ---- MONAI Label hooks --------------------------------------------------------------------------
    def is_valid(self) -> bool:
        return all(path is not None and path.exists() for path in self.model_paths.values())

    def info(self) -> dict[str, Any]:
        info = super().info()
        info["options"] = {option.name: option.help for option in self.options.options}
        return info

    def pre_transforms(self, data: dict[str, Any] | None = None) -> Sequence[Callable]:
        return [ReadVolume(channels=self.channels, spatial_dims=self.spatial_dims, max_voxels=self.settings.max_voxels)]

    def run_inferer(self, data: dict[str, Any], convert_to_batch: bool = True, device: str = "cpu") -> dict[str, Any]:
        data["options"] = self.options.parse(data)
        data["result"] = self.compute(data, device=str(device))
        return data

    def post_transforms(self, data: dict[str, Any] | None = None) -> Sequence[Callable]:
        return [self._to_segments]

    def _to_segments(self, data: dict[str, Any]) -> dict[str, Any]:
        data["segments"] = self.segments(data)
        return data

    def writer(self, data: dict[str, Any], extension: str | None = None, dtype: Any = None) -> tuple[str, dict]:
        segments: Segments = data["segments"]
        volume = data["volume"]
        kept: dict[str, Path] = {}
        if self.keeps_files:
            folder = self.output_folder(data)
            with _folder_lock(folder):  # two requests for the same image and task must not mix their files
                kept = self.keep(data, folder)
        numbers = self.numbers(data)
        numbers.update({key: str(path) for key, path in kept.items()})
        if data.get("models"):
            numbers["models"] = data["models"]
        numbers["_label_names"] = segments.label_names()
        numbers["label_colors"] = segments.label_colours()
        numbers["options"] = data["options"]
        if not segments.names:  # nothing to draw: an empty labelmap in the input's geometry
            segments = Segments(["empty"], [np.zeros(volume.spatial_shape, dtype=bool)], [(0.0, 0.0, 0.0)])
        # written in a private folder (the core's atomic writer keeps its record of what it wrote there, and
        # never writes over a file it did not make), then moved to a fresh name MONAI Label removes after the reply
        staging = Path(tempfile.mkdtemp(prefix="voxcause-reply-"))
        try:
            written = write_segmentation(staging / "label.seg.nrrd", segments.as_tuples(), volume,
                                         compress=_wanted(data.get("result_compress", True)))
            written.chmod(0o644)  # batch inference moves it into the studies' labels folder, read by the whole team
            path = Path(tempfile.gettempdir()) / f"voxcause-{uuid.uuid4().hex}.seg.nrrd"
            os.replace(written, path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return str(path), numbers

    def __call__(self, request: dict[str, Any], callbacks: Any = None) -> tuple[str | None, dict]:
        with input_errors_as_422():
            self.options.parse({**self._config, **request})  # bad options fail before the image is read
            label_file, result = super().__call__(request, callbacks)
        result["label_names"] = result.pop("_label_names", result.get("label_names"))
        result["task"] = self.name
        return label_file, result

    # ---- what each task supplies --------------------------------------------------------------------
    @abstractmethod
    def compute(self, data: dict[str, Any], *, device: str) -> Any:
        """Run the core on ``data["volume"]`` with the typed ``data["options"]``."""

    @abstractmethod
    def segments(self, data: dict[str, Any]) -> Segments:
        """Disjoint named, coloured masks (image grid) of ``data["result"]``."""

    @abstractmethod
    def numbers(self, data: dict[str, Any]) -> dict[str, Any]:
        """The JSON numbers of the reply (score, forward passes, seconds, ...)."""

    def keep(self, data: dict[str, Any], folder: Path) -> dict[str, Path]:
        """Write the files a user loads beside the label (float map ...) into ``folder``; name them."""
        return {}

    # ---- helpers --------------------------------------------------------------------------------------
    def output_folder(self, data: dict[str, Any]) -> Path:
        """``<output_dir>/<image id>/<task>``; an upload is named by the hash of its content."""
        image_id = data.get("voxcause_image_id")  # set by the app after checking it is a plain studies id
        if not image_id:
            digest = hashlib.sha1()
            with open(data["image"], "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            image_id = f"upload-{digest.hexdigest()[:12]}"
        return self.settings.output_dir / str(image_id) / self.name

    def dicom_volume(self, data: dict[str, Any]) -> Volume | None:
        """The request's volume as read from its DICOM series, for DICOM output that references that series
        (SEG, Parametric Maps): set when the image is a series of the app's DICOMweb PACS, else None.

        The folder comes from the app (``voxcause_dicom_series``, always overwritten there: a request cannot name
        a folder), the series' own slices downloaded by the datastore; the volume keeps the request's channels,
        whose grid is that series' (lib/dicomweb.py).
        """
        folder = data.get("voxcause_dicom_series")
        if not folder:
            return None
        volume = data["volume"]
        reference = voxcause.read_image(folder).reference
        if reference.GetSize() != volume.reference.GetSize():
            raise InputError(f"the DICOM series in {folder} is not on the image's grid — the cached image is stale; "
                             "remove it from the datastore cache and ask again")
        return replace(volume, reference=reference, paths=[folder])

    @contextmanager
    def model(self, role: str, device: str, data: dict[str, Any] | None = None) -> Iterator[Any]:
        """Hold the model of ``role`` for this request; with ``data``, the reply's ``models`` names it
        (`describe_model`: e.g. an nnU-Net model's format, folds and ``mirroring``)."""
        with POOL.use(self.model_paths.get(role), role=role, device=device) as model:
            if data is not None:
                data.setdefault("models", {})[role] = describe_model(model)
            yield model
