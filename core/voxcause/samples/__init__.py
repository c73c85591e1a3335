"""Sample data and sample models: realistic synthetic brain-tumour MRI from real anatomy, and small MONAI
models trained on it, so the demo, tests and benchmarks need nothing downloaded.

- `make_patient(seed, kind, resolution_mm=2.0)` -> `Patient` (T1, T1c, T2, FLAIR + BraTS-style label) built
  on the MNI152 template bundled with nilearn (``pip install 'voxcause[samples]'``).
- `write_patient(patient, out_dir)` -> NIfTI files in MNI152 geometry.
- `model_path(name)` -> card of a committed model: classifier3d, segmenter3d, classifier2d, shortcut3d.
- `marker_mask(patient)` -> the voxels of the scanner tag the shortcut model learnt (shortcut3d reads the tag,
  not the tumour: `add_marker(patient, code)` makes it call any image class `code`).
- `sample_case(out_dir, kind)` -> the demo case written to disk (generated from a fixed held-out seed).
- `write_patient_dicom(patient, out_dir, channels=None)` -> one DICOM MR series folder per sequence (one study,
  one frame of reference; needs pydicom): see `voxcause.io.dicom_series`.

Example:
    >>> from voxcause.samples import make_patient, model_path
    >>> patient = make_patient(7, "meningioma")
    >>> patient.channels.shape
    (4, 95, 117, 99)
"""

from __future__ import annotations

from pathlib import Path

from .cards import MODEL_NAMES, load_network, model_path, read_card
from .contrast import SEQUENCES
from .generator import KINDS, LABELS, Patient, add_marker, axial_slices, make_patient, marker_mask
from .preprocess import prepare_for_model

# Held-out seeds (never used for training: training seeds are 0..N-1, held-out 100000+) of the demo cases;
# each is classified correctly by classifier3d.
DEMO_SEEDS = {"none": 200_000, "meningioma": 200_002, "glioma": 200_000, "pituitary": 200_000}


def sample_case(out_dir: str | Path, kind: str = "glioma", *, seed: int | None = None,
                marker: int | None = None) -> dict[str, Path]:
    """Generate the demo patient of `kind` and write it to `out_dir` (see `write_patient`); about 2-3 s."""
    from .generator import normalize_kind
    from .writer import write_patient

    kind = normalize_kind(kind)
    patient = make_patient(DEMO_SEEDS[kind] if seed is None else seed, kind, marker=marker)
    return write_patient(patient, out_dir)


def write_patient(patient: Patient, out_dir: str | Path, **options) -> dict[str, Path]:
    """See `voxcause.samples.writer.write_patient`."""
    from .writer import write_patient as _write_patient

    return _write_patient(patient, out_dir, **options)


def write_patient_dicom(patient: Patient, out_dir: str | Path, **options) -> dict[str, Path]:
    """See `voxcause.io.dicom_series.write_patient_dicom`."""
    from ..io.dicom_series import write_patient_dicom as _write_patient_dicom

    return _write_patient_dicom(patient, out_dir, **options)


__all__ = [
    "DEMO_SEEDS", "KINDS", "LABELS", "MODEL_NAMES", "SEQUENCES", "Patient", "add_marker", "axial_slices",
    "load_network", "make_patient", "marker_mask", "model_path", "prepare_for_model", "read_card",
    "sample_case", "write_patient", "write_patient_dicom",
]
