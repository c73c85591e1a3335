"""The app on a DICOMweb PACS (``--studies http(s)://host/dicom-web``): images in, DICOM SEG out.

MONAI Label's own `DICOMWebDatastore` takes one series as one single-channel image and saves a final label
as DICOM SEG with dcmqi's ``itkimage2segimage``, a binary it downloads from GitHub when the server starts.
The voxcause models take several MR sequences (the card's ``channels``: T1, T1c, T2, FLAIR), and CI has no
internet, so `VoxcauseDICOMweb` changes three things and keeps the rest (QIDO listing, the local cache,
label bookkeeping):

- **image**: the image id is a SeriesInstanceUID; the server finds the other sequences of its study by
  SeriesDescription (case-insensitive, equal to the card's channel names), downloads them (WADO-RS),
  resamples any whose grid differs onto the requested series and caches one multi-channel NIfTI in that
  series' geometry, so the labels the app returns lie on the requested series.
- **listing**: Next Sample offers only series of studies holding every sequence (QIDO-RS, MR by default —
  MONAI Label's default filter is CT; ``MONAI_LABEL_DICOMWEB_SEARCH_FILTER`` chooses another).
- **refusals**: an unknown UID answers 404 (a study UID is named as one, with its series), a series the
  model cannot take (a SEG or other non-image object, a study missing one of the sequences) 422 — one line
  each, nothing cached.
- **DICOM SEG**: a label saved with tag ``final`` (MONAI Label's save-label path, ``PUT /datastore/label``)
  is written as a DICOM SEG with **pydicom-seg**, which monailabel 0.8.5 already ships and which works with
  its pydicom < 3 pin: one segment per label value, named from the request (the infer reply's
  ``label_names``/``label_colors``, or the Slicer client's ``label_info`` list) or else from the
  ``.seg.nrrd`` header, referencing every instance of the series and its Frame of Reference; then stored in
  the PACS with STOW-RS. No dcmqi binary, no download, no second environment.
"""

from __future__ import annotations

import logging
import os
import pathlib
import re
import tempfile
import threading
from typing import Any

import numpy as np
import SimpleITK as sitk
from cachetools import TTLCache, cached
from dicomweb_client import DICOMwebClient
from fastapi import HTTPException
from monailabel.config import settings as ml_settings
from monailabel.datastore.dicom import DICOMwebClientX, DICOMWebDatastore
from monailabel.datastore.local import LocalDatastore
from monailabel.datastore.utils.dicom import dicom_web_download_series, dicom_web_upload_dcm
from monailabel.interfaces.datastore import DefaultLabelTag
from pydicom.dataset import Dataset
from voxcause.errors import InputError

from .guard import input_errors_as_422

logger = logging.getLogger(__name__)

#: Modalities of DICOM objects that are not images a model can take.
NOT_IMAGES = {"SEG", "RTSTRUCT", "SR", "PR", "KO", "REG", "RTPLAN", "RTDOSE", "DOC"}
#: MR is what the voxcause sample models take; MONAI Label's own default filter lists CT only, and is replaced.
DEFAULT_SEARCH_FILTER = {"Modality": "MR"}
MONAI_LABEL_DEFAULT_FILTER = {"Modality": "CT"}
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
#: Coded concepts of every segment (the SegmentLabel says what it is: a tumour label, an explanation level ...).
CATEGORY = {"CodeValue": "49755003", "CodingSchemeDesignator": "SCT", "CodeMeaning": "Morphologically Altered Structure"}
PROPERTY = {"CodeValue": "108369006", "CodingSchemeDesignator": "SCT", "CodeMeaning": "Neoplasm"}


def make_client(url: str) -> DICOMwebClient:
    """The DICOMweb client MONAI Label builds for ``--studies URL`` (same settings and credentials)."""
    if "googleapis.com" in url:
        from dicomweb_client.ext.gcp.session_utils import create_session_from_gcp_credentials

        return DICOMwebClient(url=url, session=create_session_from_gcp_credentials())
    session = None
    username = ml_settings.MONAI_LABEL_DATASTORE_USERNAME or ml_settings.MONAI_LABEL_DICOMWEB_USERNAME
    password = ml_settings.MONAI_LABEL_DATASTORE_PASSWORD or ml_settings.MONAI_LABEL_DICOMWEB_PASSWORD
    if username and password:
        from dicomweb_client.session_utils import create_session_from_user_pass

        session = create_session_from_user_pass(username, password)
    return DICOMwebClientX(url=url, session=session, qido_url_prefix=ml_settings.MONAI_LABEL_QIDO_PREFIX,
                           wado_url_prefix=ml_settings.MONAI_LABEL_WADO_PREFIX,
                           stow_url_prefix=ml_settings.MONAI_LABEL_STOW_PREFIX)


def make_datastore(url: str, *, channels: tuple[str, ...]) -> VoxcauseDICOMweb:
    """The app's datastore for ``--studies URL`` (MONAI Label's cache and search-filter settings apply)."""
    cache = (ml_settings.MONAI_LABEL_DATASTORE_CACHE_PATH or ml_settings.MONAI_LABEL_DICOMWEB_CACHE_PATH or "").strip()
    # monailabel's start_server exports every setting into the environment, so its CT default cannot be told
    # from a user's choice of CT: any other filter is the user's
    search = ml_settings.MONAI_LABEL_DICOMWEB_SEARCH_FILTER
    search = DEFAULT_SEARCH_FILTER if search == MONAI_LABEL_DEFAULT_FILTER else search
    return VoxcauseDICOMweb(make_client(url.rstrip("/")), search_filter=search, cache_path=cache or None,
                            fetch_by_frame=ml_settings.MONAI_LABEL_DICOMWEB_FETCH_BY_FRAME, channels=channels)


def _read_series(folder: str) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(folder)
    if not files:
        raise InputError(f"the series downloaded into {folder} holds no image DICOM files")
    reader.SetFileNames(files)
    return sitk.Cast(reader.Execute(), sitk.sitkFloat32)


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return (a.GetSize() == b.GetSize() and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-4)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-3)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-5))


class VoxcauseDICOMweb(DICOMWebDatastore):
    """MONAI Label's DICOMweb datastore with multi-sequence images and pydicom-seg DICOM SEG (module docstring)."""

    def __init__(self, client: DICOMwebClient, *, search_filter: dict[str, Any], cache_path: str | None,
                 fetch_by_frame: bool, channels: tuple[str, ...]) -> None:
        super().__init__(client, search_filter, cache_path, fetch_by_frame=fetch_by_frame, convert_to_nifti=True)
        self.channels = tuple(channels)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    # ---- listing (what the Slicer client's Next Sample offers) ---------------------------------------------
    @cached(cache=TTLCache(maxsize=16, ttl=ml_settings.MONAI_LABEL_DICOMWEB_CACHE_EXPIRY))
    def list_images(self) -> list[str]:
        """Series matching the search filter whose study holds every sequence the model takes."""
        records = [Dataset.from_json(record) for record in self._client.search_for_series(
            search_filters=self._search_filter,
            fields=["StudyInstanceUID", "SeriesInstanceUID", "SeriesDescription", "Modality"])]
        if len(self.channels) <= 1:
            return [str(meta.get("SeriesInstanceUID", "")) for meta in records]
        described: dict[str, set[str]] = {}
        for meta in records:
            described.setdefault(str(meta.get("StudyInstanceUID", "")), set()).add(
                str(meta.get("SeriesDescription", "")).strip().casefold())
        wanted = {name.casefold() for name in self.channels}
        return [str(meta.get("SeriesInstanceUID", "")) for meta in records
                if wanted <= described[str(meta.get("StudyInstanceUID", ""))]]

    # ---- lookups ----------------------------------------------------------------------------------------
    def series_meta(self, series_uid: str) -> Dataset | None:
        """The QIDO-RS record of a series, None if the PACS has none with that UID."""
        if not _UID.match(series_uid) or len(series_uid) > 64:
            return None
        found = [Dataset.from_json(record) for record in
                 self._client.search_for_series(search_filters={"SeriesInstanceUID": series_uid})]
        found = [meta for meta in found if str(meta.get("SeriesInstanceUID", "")) == series_uid]
        return found[0] if found else None

    def study_series(self, study_uid: str) -> list[Dataset]:
        return [Dataset.from_json(record) for record in
                self._client.search_for_series(search_filters={"StudyInstanceUID": study_uid})]

    def not_found_hint(self, uid: str) -> str:
        """Why an id names no series: a study UID (with its series listed) or nothing the PACS holds."""
        if _UID.match(uid):
            series = self.study_series(uid)
            if series:
                listed = ", ".join(f"{meta.get('SeriesInstanceUID', '?')} ({meta.get('SeriesDescription', '')})"
                                   for meta in series[:8])
                return f"{uid} is a study, not a series — pass one of its series UIDs: {listed}"
        return (f"the DICOMweb server has no series with SeriesInstanceUID {uid!r} — image ids are the "
                "SeriesInstanceUIDs of its MR series (QIDO-RS: GET <studies>/series?Modality=MR)")

    def _download(self, study_uid: str, series_uid: str) -> str:
        folder = os.path.realpath(os.path.join(self._datastore.image_path(), series_uid))
        if not os.path.isdir(folder) or not os.listdir(folder):
            dicom_web_download_series(study_uid, series_uid, folder, self._client, self._fetch_by_frame)
        return folder

    # ---- images -----------------------------------------------------------------------------------------
    def get_image_uri(self, image_id: str) -> str:
        """A multi-channel NIfTI of the series ``image_id`` and its study's other sequences; "" if unknown."""
        if not _UID.match(image_id or ""):
            return LocalDatastore.get_image_uri(self, image_id)  # an image added locally (/datastore/image)
        with self._lock(image_id):
            cached = os.path.realpath(os.path.join(self._datastore.image_path(), f"{image_id}.nii.gz"))
            if os.path.exists(cached):
                return cached
            meta = self.series_meta(image_id)
            if meta is None:
                return ""
            modality = str(meta.get("Modality", ""))
            if modality in NOT_IMAGES:
                raise InputError(f"series {image_id} is a {modality} object, not an image — pass the UID of an "
                                 "image series (an MR sequence of the study)")
            study_uid = str(meta.get("StudyInstanceUID", ""))
            reference = _read_series(self._download(study_uid, image_id))
            images = [reference]
            if len(self.channels) > 1:
                images = [self._channel(study_uid, image_id, uid, reference)
                          for uid in self._channel_uids(study_uid, image_id, meta)]
            volume = images[0] if len(images) == 1 else sitk.Compose(images)
            handle, temporary = tempfile.mkstemp(suffix=".nii.gz")
            os.close(handle)
            try:
                sitk.WriteImage(volume, temporary, useCompression=True)
                LocalDatastore.add_image(self, image_id, temporary, self._dicom_info(image_id))
            finally:
                os.unlink(temporary)
            return cached

    def _channel_uids(self, study_uid: str, image_id: str, meta: Dataset) -> list[str]:
        """Series UIDs of the model's channels in card order, found by SeriesDescription within the study."""
        by_name: dict[str, str] = {}
        for series in self.study_series(study_uid):
            name = str(series.get("SeriesDescription", "")).strip().casefold()
            if name and str(series.get("Modality", "")) not in NOT_IMAGES:
                by_name.setdefault(name, str(series.get("SeriesInstanceUID", "")))
        own = str(meta.get("SeriesDescription", "")).strip().casefold()
        if own:
            by_name[own] = image_id  # the requested series stands for its own sequence
        missing = [name for name in self.channels if name.casefold() not in by_name]
        if missing:
            present = sorted({str(s.get("SeriesDescription", "")) for s in self.study_series(study_uid)} - {""})
            raise InputError(
                f"series {image_id} is in a study without a {', '.join(missing)} series — the model takes "
                f"{len(self.channels)} sequences ({', '.join(self.channels)}), found by SeriesDescription; the "
                f"study has: {', '.join(present) or 'no described series'}")
        return [by_name[name.casefold()] for name in self.channels]

    def _channel(self, study_uid: str, image_id: str, series_uid: str, reference: sitk.Image) -> sitk.Image:
        if series_uid == image_id:
            return reference
        image = _read_series(self._download(study_uid, series_uid))
        if _same_grid(image, reference):
            image.CopyInformation(reference)
            return image
        return sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)

    # ---- results back into the PACS -----------------------------------------------------------------------
    def series_folder(self, image_id: str | None) -> str | None:
        """The folder the series ``image_id`` is downloaded into (its DICOM slices), None for other ids."""
        if not _UID.match(image_id or ""):
            return None
        return os.path.realpath(os.path.join(self._datastore.image_path(), image_id))

    def store_results(self, files: dict[str, str]) -> dict[str, str]:
        """STOW-RS each DICOM file an infer task wrote (a SEG, Parametric Maps referencing the requested series,
        in its study) into the PACS; ``{reply key: SeriesInstanceUID}``."""
        stored = {}
        for key, path in files.items():
            stored[key.removesuffix("_file")] = dicom_web_upload_dcm(path, self._client)
        logger.info(f"voxcause: stored {sorted(stored)} in the PACS: {stored}")
        return stored

    # ---- labels -----------------------------------------------------------------------------------------
    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any],
                   label_id: str = "") -> str:
        """Keep the label locally; a ``final`` one also goes to the PACS as a DICOM SEG (pydicom-seg)."""
        with input_errors_as_422():
            if not self.get_image_uri(image_id):  # fetched (and checked) before its label is kept
                raise HTTPException(status_code=404, detail=f"cannot save a label for {image_id!r}: "
                                    f"{self.not_found_hint(image_id)}")
            if label_tag != DefaultLabelTag.FINAL:
                return LocalDatastore.save_label(self, image_id, label_filename, label_tag, label_info)
            series_dir = os.path.realpath(os.path.join(self._datastore.image_path(), image_id))
            seg_file = write_dicom_seg(series_dir, label_filename, label_info)
            try:
                seg_series = dicom_web_upload_dcm(seg_file, self._client)
            finally:
                os.unlink(seg_file)
            image_info = self.get_image_info(image_id)
            label_info.update({"SeriesInstanceUID": seg_series, "Modality": "SEG",
                               "PatientID": image_info.get("PatientID"),
                               "StudyInstanceUID": image_info.get("StudyInstanceUID")})
            logger.info(f"voxcause: label of {image_id} stored as DICOM SEG series {seg_series}")
            return LocalDatastore.save_label(self, image_id, label_filename, label_tag, label_info)


def segment_names(label_file: str, label_info: dict[str, Any], values: list[int]) -> dict[int, tuple[str, list]]:
    """``{value: (name, rgb 0..255)}`` for every value of the label.

    Names come from the request — ``label_names`` ({name: value}, as the infer reply has it) with
    ``label_colors`` ({name: [r, g, b] 0..1}), or ``label_info`` ([{name, idx, color}], the Slicer client's
    form; ``idx`` defaults to the position) — else from a ``.seg.nrrd`` header, else ``label <value>``.
    """
    named: dict[int, tuple[str, list]] = {}
    names = label_info.get("label_names")
    colours = label_info.get("label_colors") or {}
    if isinstance(names, dict):
        for name, value in names.items():
            rgb = colours.get(name)
            named[int(value)] = (str(name), [round(255 * c) for c in rgb] if rgb else [])
    for position, item in enumerate(label_info.get("label_info") or [], start=1):
        if isinstance(item, dict) and item.get("name"):
            value = int(item.get("idx", item.get("id", position)))
            named.setdefault(value, (str(item["name"]), [int(c) for c in item.get("color", [])][:3]))
    if label_file.endswith(".seg.nrrd"):
        reader = sitk.ImageFileReader()
        reader.SetFileName(label_file)
        reader.ReadImageInformation()
        keys = set(reader.GetMetaDataKeys())
        for index in range(len(values) + 64):
            key = f"Segment{index}_"
            if key + "Name" in keys and key + "LabelValue" in keys:
                rgb = [round(255 * float(c)) for c in reader.GetMetaData(key + "Color").split()] if (
                    key + "Color") in keys else []
                named.setdefault(int(reader.GetMetaData(key + "LabelValue")), (reader.GetMetaData(key + "Name"), rgb))
    default = [[255, 0, 0], [0, 200, 0], [0, 0, 255], [255, 200, 0], [0, 200, 255], [200, 0, 255]]
    return {value: (named[value][0] if value in named else f"label {value}",
                    (named.get(value, ("", []))[1] or default[(value - 1) % len(default)])) for value in values}


def write_dicom_seg(series_dir: str, label_file: str, label_info: dict[str, Any]) -> str:
    """A DICOM SEG (pydicom-seg MultiClassWriter) of a labelmap on the grid of the series in ``series_dir``."""
    import pydicom_seg
    from pydicom.filereader import dcmread

    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(series_dir)
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOff()
    source = reader.Execute()
    label = sitk.ReadImage(label_file)
    if label.GetNumberOfComponentsPerPixel() != 1:
        raise InputError("the label has several layers — save a single-layer labelmap (values 1..N)")
    if not _same_grid(label, source):
        raise InputError(f"the label ({list(label.GetSize())} voxels at {np.round(label.GetOrigin(), 2).tolist()}) is "
                         f"not on the grid of its image series ({list(source.GetSize())} at "
                         f"{np.round(source.GetOrigin(), 2).tolist()}) — save the label the server returned for it")
    label = sitk.Cast(label, sitk.sitkUInt16)
    label.CopyInformation(source)
    values = sorted(int(v) for v in np.unique(sitk.GetArrayViewFromImage(label)) if v != 0)
    if not values:
        raise InputError("the label is empty — nothing to store as DICOM SEG")
    algorithm = str(label_info.get("task") or label_info.get("model_name") or "voxcause")
    attributes = [{
        "labelID": value, "SegmentLabel": name[:64], "SegmentDescription": f"{name} ({algorithm})"[:64],
        "SegmentAlgorithmType": "AUTOMATIC", "SegmentAlgorithmName": "voxcause",
        "SegmentedPropertyCategoryCodeSequence": CATEGORY, "SegmentedPropertyTypeCodeSequence": PROPERTY,
        "recommendedDisplayRGBValue": rgb,
    } for value, (name, rgb) in segment_names(label_file, label_info, values).items()]
    template = pydicom_seg.template.from_dcmqi_metainfo({
        "ContentCreatorName": "voxcause", "ClinicalTrialSeriesID": "Session1", "ClinicalTrialTimePointID": "1",
        "SeriesDescription": f"voxcause {algorithm}"[:64], "SeriesNumber": "300", "InstanceNumber": "1",
        "segmentAttributes": [attributes], "ContentLabel": "SEGMENTATION",
        "ContentDescription": "voxcause via MONAI Label", "ClinicalTrialCoordinatingCenterName": "voxcause",
        "BodyPartExamined": "BRAIN",
    })
    writer = pydicom_seg.MultiClassWriter(template=template, inplane_cropping=False, skip_empty_slices=False,
                                          skip_missing_segment=False)
    datasets = [dcmread(str(path), stop_before_pixels=True) for path in files]
    handle, output = tempfile.mkstemp(suffix=".dcm")
    os.close(handle)
    try:
        writer.write(label, datasets).save_as(output)
    except BaseException:
        pathlib.Path(output).unlink(missing_ok=True)
        raise
    return output
