"""Writing volumes as classic DICOM series (one file per slice), e.g. a sample patient for a PACS.

`write_patient_dicom(patient, out_dir)` writes each MR sequence of a `voxcause.samples` patient as its own
MR Image Storage series (``out_dir/<sequence>/IM0001.dcm`` ...): one study, one Frame of Reference shared by
every series, proper UIDs (random, or reproducible from ``uid_seed``), positions, orientation and spacing
from the patient's geometry. `write_dicom_series` does the same for any 3D scalar SimpleITK image.

Only pydicom is needed (imported when a series is written), and both pydicom 2 (the MONAI Label
environment) and pydicom 3 work. Intensities are stored as int16 without rescale tags (classic MR has no
Modality LUT): values are rounded as they are when they fit in int16 (the sample patients' MR units do),
otherwise scaled to fill it; ``StoredValueScale`` in the return value says which factor was used.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .atomic import atomic_directory
from .images import PathLike

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
INT16_LIMIT = 32000.0


def new_uid(seed: str | None = None) -> str:
    """A DICOM UID under pydicom's root: random, or derived from ``seed`` (the same seed, the same UID)."""
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[seed]) if seed is not None else generate_uid()


def _stored_values(array: np.ndarray) -> tuple[np.ndarray, float]:
    """int16 pixel values and the factor applied (1.0 when the values fit as they are)."""
    peak = float(np.abs(array).max()) if array.size else 0.0
    scale = 1.0 if peak <= INT16_LIMIT else INT16_LIMIT / peak
    return np.round(array * scale).astype(np.int16), scale


def _save(dataset, path: Path) -> None:
    import pydicom

    if int(pydicom.__version__.split(".")[0]) >= 3:
        dataset.save_as(str(path), enforce_file_format=True)
    else:  # pydicom 2: encoding from the dataset flags, preamble and meta written on request
        dataset.is_little_endian = True
        dataset.is_implicit_VR = False
        dataset.save_as(str(path), write_like_original=False)


def write_dicom_series(
    image: sitk.Image,
    folder: PathLike,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    series_number: int = 1,
    description: str = "",
    patient_id: str = "VOXCAUSE",
    patient_name: str | None = None,
    uid_seed: str | None = None,
    study_date: str = "20260101",
) -> dict:
    """Write a 3D scalar image as an MR Image Storage series, one file per slice, atomically.

    Args:
        image: 3D scalar image; its geometry (origin, spacing, direction) becomes each slice's Image Position
            (Patient), Image Orientation (Patient), Pixel Spacing and Slice Thickness.
        folder: output folder (created); files ``IM0001.dcm`` ... in slice order (index k of the image).
        study_uid, series_uid, frame_of_reference_uid: UIDs to use; new ones are made for those not given
            (pass the same study and frame of reference UIDs to put several series in one study).
        uid_seed: makes the generated UIDs reproducible (the same seed, the same UIDs).

    Returns:
        ``{"folder", "files", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID",
        "SOPInstanceUIDs", "StoredValueScale"}``.
    """
    from pydicom.dataset import Dataset, FileMetaDataset

    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError("write_dicom_series needs a 3D scalar image (write each channel as its own series)")
    seed = (lambda part: f"{uid_seed}/{part}") if uid_seed is not None else (lambda part: None)
    study_uid = study_uid or new_uid(seed("study"))
    series_uid = series_uid or new_uid(seed(f"series/{series_number}/{description}"))
    frame_of_reference_uid = frame_of_reference_uid or new_uid(seed("frame"))
    pixels, scale = _stored_values(sitk.GetArrayFromImage(image).astype(np.float64))
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    orientation = [*direction[:, 0], *direction[:, 1]]
    spacing = image.GetSpacing()
    normal = direction[:, 2]
    now = datetime.datetime.now(datetime.timezone.utc)
    files, sop_uids = [], []
    with atomic_directory(folder) as staging:
        for index in range(pixels.shape[0]):
            sop_uid = new_uid(seed(f"series/{series_number}/{description}/{index}"))
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
            meta.MediaStorageSOPInstanceUID = sop_uid
            meta.TransferSyntaxUID = EXPLICIT_VR_LITTLE_ENDIAN
            ds = Dataset()
            ds.file_meta = meta
            ds.SpecificCharacterSet = "ISO_IR 192"
            ds.SOPClassUID = MR_IMAGE_STORAGE
            ds.SOPInstanceUID = sop_uid
            ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
            ds.InstanceCreationDate = now.strftime("%Y%m%d")
            ds.InstanceCreationTime = now.strftime("%H%M%S")
            ds.StudyDate = ds.SeriesDate = ds.ContentDate = study_date
            ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
            ds.AccessionNumber = patient_id[:16]
            ds.Modality = "MR"
            ds.Manufacturer = "voxcause"
            ds.ManufacturerModelName = "voxcause synthetic MR"
            ds.ReferringPhysicianName = ""
            ds.StudyDescription = "voxcause sample patient"
            ds.SeriesDescription = description
            ds.ProtocolName = description or "voxcause"
            ds.PatientName = patient_name or f"VOXCAUSE^{patient_id}"
            ds.PatientID = patient_id
            ds.PatientBirthDate = ""
            ds.PatientSex = "O"
            ds.BodyPartExamined = "BRAIN"
            ds.ScanningSequence = "RM"
            ds.SequenceVariant = "NONE"
            ds.ScanOptions = ""
            ds.MRAcquisitionType = "3D"
            ds.EchoTrainLength = None
            ds.SliceThickness = f"{spacing[2]:.6g}"
            ds.SpacingBetweenSlices = f"{spacing[2]:.6g}"
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.StudyID = "1"
            ds.SeriesNumber = series_number
            ds.InstanceNumber = index + 1
            position = np.array(image.TransformIndexToPhysicalPoint((0, 0, index)), dtype=float)
            ds.ImagePositionPatient = [f"{v:.6g}" for v in position]
            ds.ImageOrientationPatient = [f"{v:.6g}" for v in orientation]
            ds.FrameOfReferenceUID = frame_of_reference_uid
            ds.PositionReferenceIndicator = ""
            ds.SliceLocation = f"{float(position @ normal):.6g}"
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows, ds.Columns = int(pixels.shape[1]), int(pixels.shape[2])
            ds.PixelSpacing = [f"{spacing[1]:.6g}", f"{spacing[0]:.6g}"]  # row spacing (y), column spacing (x)
            ds.BitsAllocated = 16
            ds.BitsStored = 16
            ds.HighBit = 15
            ds.PixelRepresentation = 1
            plane = pixels[index]
            ds.SmallestImagePixelValue = int(plane.min())
            ds.LargestImagePixelValue = int(plane.max())
            ds["SmallestImagePixelValue"].VR = ds["LargestImagePixelValue"].VR = "SS"
            ds.PixelData = np.ascontiguousarray(plane, dtype="<i2").tobytes()
            name = f"IM{index + 1:04d}.dcm"
            _save(ds, staging / name)
            files.append(Path(folder) / name)
            sop_uids.append(sop_uid)
    return {
        "folder": Path(folder),
        "files": files,
        "StudyInstanceUID": study_uid,
        "SeriesInstanceUID": series_uid,
        "FrameOfReferenceUID": frame_of_reference_uid,
        "SOPInstanceUIDs": sop_uids,
        "StoredValueScale": scale,
    }


def write_patient_dicom(
    patient,
    out_dir: PathLike,
    *,
    channels: str | Sequence[str] | None = None,
    patient_id: str | None = None,
    uid_seed: str | None = None,
) -> dict[str, Path]:
    """Write a `voxcause.samples` patient as a DICOM study: one MR series per sequence, one folder each.

    Args:
        patient: a `voxcause.samples.Patient` (``make_patient(seed, kind)``).
        out_dir: the study folder; series go to ``out_dir/<sequence>/`` (``T1``, ``T1c``, ``T2``, ``FLAIR``).
        channels: the sequences to write (one name or several; default all, in the patient's order).
        patient_id: DICOM Patient ID (default ``<kind>-<seed>``).
        uid_seed: reproducible UIDs (default: new random UIDs on every call).

    Returns:
        ``{sequence: series folder}`` in the order written; the series share the Study Instance UID and the
        Frame of Reference UID. ``voxcause explain out/T1 out/T1c out/T2 out/FLAIR --model card`` reads them
        as channels.
    """
    sequences = list(patient.sequences)
    wanted = [channels] if isinstance(channels, str) else list(channels or sequences)
    unknown = [name for name in wanted if name not in sequences]
    if unknown:
        raise ValueError(f"unknown sequence(s) {unknown}: the patient has {sequences}")
    ident = patient_id or f"{patient.kind}-{patient.seed}"
    study_uid = new_uid(f"{uid_seed}/study" if uid_seed is not None else None)
    frame_uid = new_uid(f"{uid_seed}/frame" if uid_seed is not None else None)
    folders: dict[str, Path] = {}
    for name in wanted:
        index = sequences.index(name)
        written = write_dicom_series(
            patient.image(patient.channels[index]),
            Path(out_dir) / name,
            study_uid=study_uid,
            frame_of_reference_uid=frame_uid,
            series_number=index + 1,
            description=name,
            patient_id=ident,
            uid_seed=uid_seed,
        )
        folders[name] = written["folder"]
    return folders
