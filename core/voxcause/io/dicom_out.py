"""DICOM output beside the NIfTI/NRRD results: the explanation segments as a DICOM SEG and the map as a DICOM
Parametric Map, both referencing the input's DICOM series (highdicom, imported only here, when they are
written: the core keeps importing where highdicom/pydicom 3 are absent, e.g. the MONAI Label environment).

- ``explanation.seg.dcm``: a BINARY Segmentation with the same named segments as ``explanation.seg.nrrd``
  (explanations and responsibility levels; segments may overlap), one frame per source slice that holds
  any of a segment, each frame positioned on its source slice.
- ``map.pm.dcm``: a Parametric Map of the float32 map (FloatPixelData, identity real-world value mapping),
  one frame per source slice; for segmenters likewise ``probability.pm.dcm`` and, for ensembles,
  ``uncertainty.pm.dcm`` (`voxcause.probability`; `PARAMETRIC_MAPS`).

Both share the source's Study, Frame of Reference and patient, and list the source slices (the first
channel's series: the geometry reference) as referenced SOP instances; the SEG also lists the other
channels' series. Only DICOM series folders are references: a NIfTI input has no SOP instances to point at,
so asking for DICOM output there is refused (`InputError`).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .images import Volume

SEG_NAME = "explanation.seg.dcm"
MAP_NAME = "map.pm.dcm"
SEG_SERIES_NUMBER = 9101


@dataclass(frozen=True)
class MapKind:
    """A float volume voxcause writes as a Parametric Map: its file, series number and value meaning."""

    file: str
    series_number: int
    lut_label: str
    meaning: str  # LUT explanation; ``{method}``/``{target}`` filled in
    fixed_range: tuple[float, float] | None = None  # display window; None: the values' own range


#: The Parametric Maps, by volume name (summary.json ``volumes`` names each file ``<name>_dicom``).
PARAMETRIC_MAPS = {
    "map": MapKind(MAP_NAME, 9102, "RESPONSIBILITY", "voxcause {method} map (higher = more responsible)"),
    "probability": MapKind("probability.pm.dcm", 9103, "PROBABILITY", "model probability of '{target}'", (0.0, 1.0)),
    "uncertainty": MapKind("uncertainty.pm.dcm", 9104, "UNCERTAINTY", "std of P('{target}') across folds"),
}
POSITION_TOLERANCE_MM = 0.01
REFUSAL = (
    "DICOM output needs a DICOM input series (the SEG and parametric map reference its slices) — pass the "
    "DICOM folder(s) as the image, or leave out --dicom"
)


def series_files(folder: str | Path) -> list[str] | None:
    """The slice files of the series `voxcause.io.read_image` reads from ``folder`` (the same choice and
    order: GDCM's first series, sorted along the slice normal), or None when ``folder`` is not a DICOM folder."""
    source = Path(folder)
    if not source.is_dir():
        return None
    ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(source))
    if not ids:
        return None
    return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(source), ids[0]))


def is_dicom_input(volume_or_paths: Volume | Sequence[str | Path] | str | Path) -> bool:
    """Whether the image (a `Volume`, or the paths given to `read_image`) was read from DICOM series folders."""
    if isinstance(volume_or_paths, Volume):
        paths = volume_or_paths.paths
    elif isinstance(volume_or_paths, str | Path):
        paths = [volume_or_paths]
    else:
        paths = list(volume_or_paths)
    return bool(paths) and all(series_files(path) for path in paths)


def check_dicom_request(paths: Sequence[str | Path] | str | Path) -> None:
    """Refuse DICOM output (one-line `InputError`) before any work when the input is not DICOM series or
    highdicom cannot be loaded."""
    if not is_dicom_input(paths):
        raise InputError(REFUSAL)
    _highdicom()


def _highdicom():
    """highdicom, or a one-line `InputError` naming the extra (highdicom needs pydicom 3)."""
    try:
        import highdicom
    except Exception as error:  # ImportError, or highdicom failing on pydicom 2
        reason = (str(error).strip().splitlines() or [""])[0]
        raise InputError(
            f"DICOM output needs highdicom with pydicom 3 ({type(error).__name__}: {reason}) — "
            "pip install 'voxcause[dicom]'"
        ) from None
    return highdicom


def _source_datasets(volume: Volume) -> tuple[list, list]:
    """The reference channel's slice datasets in the volume's k order (checked against its geometry), and the
    other channels' slices."""
    import pydicom

    reference = volume.reference
    files = series_files(volume.paths[0]) or []
    depth = reference.GetSize()[2] if reference.GetDimension() == 3 else 1
    if len(files) != depth:
        raise InputError(f"{volume.paths[0]}: {len(files)} DICOM files for {depth} slices — a multi-frame or "
                         "mixed series cannot be referenced slice by slice")
    datasets = [pydicom.dcmread(name, stop_before_pixels=True) for name in files]
    for index, dataset in enumerate(datasets):
        expected = np.array(reference.TransformIndexToPhysicalPoint((0, 0, index)[: reference.GetDimension()]))
        position = np.array([float(v) for v in dataset.ImagePositionPatient])
        if np.abs(position[: expected.size] - expected).max() > POSITION_TOLERANCE_MM:
            raise InputError(f"{files[index]}: slice position {position.tolist()} differs from the volume's "
                             f"{expected.tolist()} — the DICOM series changed since it was read")
    further = []
    for path in volume.paths[1:]:
        further.extend(pydicom.dcmread(name, stop_before_pixels=True) for name in series_files(path) or [])
    further = [ds for ds in further if ds.StudyInstanceUID == datasets[0].StudyInstanceUID]
    return datasets, further


def _frames(array: np.ndarray, depth: int) -> np.ndarray:
    """(*spatial) -> (frames, rows, cols): 2D images become one frame."""
    return array.reshape(depth, *array.shape[-2:])


def _window(hd, centre: float, width: float) -> dict:
    """The parametric map's display window, in the form this highdicom version takes."""
    if "voi_lut_transformations" in inspect.signature(hd.pm.ParametricMap.__init__).parameters:
        return {"voi_lut_transformations": [hd.VOILUTTransformation(window_center=centre, window_width=width)]}
    return {"window_center": centre, "window_width": width}


def _further(hd, further: list) -> dict:
    """The other channels' slices as further source images, where this highdicom version takes them (0.22,
    for pydicom 2, references the geometry series only)."""
    if further and "further_source_images" in inspect.signature(hd.seg.Segmentation.__init__).parameters:
        return {"further_source_images": further}
    return {}


def _coloured(hd, colour: Sequence[float], **description):
    """A SegmentDescription with its display colour (CIELab), in the form this highdicom version takes:
    highdicom 0.22, the last for pydicom 2 (the MONAI Label environment), has no ``display_color`` argument
    nor ``CIELabColor.from_rgb``, so the colour is converted with scikit-image and set on the dataset."""
    rgb = tuple(float(c) for c in colour)
    if hasattr(hd.color.CIELabColor, "from_rgb"):
        return hd.seg.SegmentDescription(**description, display_color=hd.color.CIELabColor.from_rgb(*rgb))
    from skimage.color import rgb2lab

    lightness, a, b = rgb2lab(np.array([[rgb]], dtype=float))[0, 0]
    lab = hd.color.CIELabColor(float(np.clip(lightness, 0, 100)), float(np.clip(a, -128, 127)),
                               float(np.clip(b, -128, 127)))
    segment = hd.seg.SegmentDescription(**description)
    segment.RecommendedDisplayCIELabValue = list(lab.value)
    return segment


def _common() -> dict:
    from .._version import __version__

    return {"instance_number": 1, "manufacturer": "voxcause", "manufacturer_model_name": "voxcause",
            "software_versions": __version__, "device_serial_number": "1"}


def _why(method: str, target: str) -> str:
    return f"voxcause {method}: why '{target}'".strip() if target else f"voxcause {method}".strip()


def write_parametric_maps(folder: str | Path, volume: Volume, maps: dict[str, np.ndarray], *, method: str = "",
                          target: str = "") -> list[Path]:
    """Only Parametric Maps: one per `PARAMETRIC_MAPS` entry of ``maps`` (float volumes on the grid of
    ``volume``, read from DICOM series folders), e.g. the probability and uncertainty of a segmenter."""
    hd = _highdicom()
    datasets, _ = _source_datasets(volume)
    return [_write_parametric_map(hd, folder, datasets, key, values, method=method, target=target,
                                  why=_why(method, target), common=_common()) for key, values in maps.items()]


def write_explanation_dicom(
    folder: str | Path,
    volume: Volume,
    segments: Sequence[tuple[str, np.ndarray, tuple[float, float, float]]],
    value_map: np.ndarray,
    *,
    method: str = "",
    target: str = "",
    scalar_maps: dict[str, np.ndarray] | None = None,
) -> list[Path]:
    """Write ``explanation.seg.dcm`` (the segments), ``map.pm.dcm`` (the map) and a Parametric Map per
    `PARAMETRIC_MAPS` entry of ``scalar_maps`` (the probability and uncertainty) into ``folder``.

    Args:
        folder: output folder (the staging folder of `voxcause.outputs.save_explanation`).
        volume: the input, read from DICOM series folders (the first is the geometry reference).
        segments: ``(name, mask, (r, g, b))`` as for `write_segmentation` (`outputs.explanation_segments`).
        value_map: float map on the volume's grid.
        method, target: recorded in the series descriptions and the algorithm identification.
        scalar_maps: further float volumes on the volume's grid, by `PARAMETRIC_MAPS` name.

    Returns:
        The files written.
    """
    hd = _highdicom()
    from pydicom.sr.codedict import codes

    from .._version import __version__

    datasets, further = _source_datasets(volume)
    depth = len(datasets)
    written = []
    algorithm = hd.AlgorithmIdentificationSequence(
        name=f"voxcause {method}".strip(), family=codes.cid7162.ArtificialIntelligence, version=__version__
    )
    common = _common()
    why = _why(method, target)
    if segments:
        category = hd.sr.CodedConcept("VXC-EXPL", "99VOXCAUSE", "Explanation region")
        descriptions = [
            _coloured(hd, colour, segment_number=number, segment_label=name[:64],
                      segmented_property_category=category,
                      segmented_property_type=hd.sr.CodedConcept(f"VXC-{number}", "99VOXCAUSE", name[:64]),
                      algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                      algorithm_identification=algorithm)
            for number, (name, _, colour) in enumerate(segments, start=1)
        ]
        stacked = np.stack([_frames(np.asarray(mask, dtype=bool), depth) for _, mask, _ in segments], axis=-1)
        seg = hd.seg.Segmentation(
            source_images=datasets,
            pixel_array=stacked.astype(np.uint8),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=hd.UID(),
            series_description=f"{why} (segments)"[:64],
            content_label="VOXCAUSE",
            content_description="explanations and responsibility levels",
            **_further(hd, further),
            **common,
        )
        seg.save_as(str(Path(folder) / SEG_NAME))
        written.append(Path(folder) / SEG_NAME)
    for key, values in {"map": value_map, **(scalar_maps or {})}.items():
        written.append(_write_parametric_map(hd, folder, datasets, key, values, method=method, target=target,
                                             why=why, common=common))
    return written


def _write_parametric_map(hd, folder, datasets, key, values, *, method, target, why, common) -> Path:
    """One float volume as a Parametric Map (FloatPixelData, identity real-world value mapping), one frame
    per source slice."""
    from pydicom.sr.codedict import codes

    kind = PARAMETRIC_MAPS[key]
    frames = _frames(np.asarray(values, dtype=np.float32), len(datasets))
    low, high = kind.fixed_range or (float(frames.min()), float(frames.max()))
    meaning = kind.meaning.format(method=method, target=target)
    mapping = hd.pm.RealWorldValueMapping(
        lut_label=kind.lut_label,
        lut_explanation=meaning[:64],
        unit=codes.UCUM.NoUnits,
        value_range=(low, high if high > low else low + 1.0),
        slope=1.0,
        intercept=0.0,
    )
    pm = hd.pm.ParametricMap(
        source_images=datasets,
        pixel_array=frames,
        series_instance_uid=hd.UID(),
        series_number=kind.series_number,
        sop_instance_uid=hd.UID(),
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        **_window(hd, (low + high) / 2, max(high - low, 1e-6)),
        series_description=f"{why} ({key})"[:64],
        content_label="VOXCAUSE",
        content_description=meaning[:64],
        **common,
    )
    path = Path(folder) / kind.file
    pm.save_as(str(path))
    return path


def write_dicom_outputs(folder: str | Path, explanation, segments, dicom: bool | None = None) -> list[Path]:
    """The hook of `voxcause.outputs.save_explanation`: DICOM SEG + Parametric Map when the input is a DICOM
    series (``dicom=None``: automatic; then a missing highdicom or an unreferenceable series is a warning) or
    when asked (``dicom=True``: a non-DICOM input or a failure is an `InputError`); ``dicom=False``: nothing."""
    volume = explanation.volume
    if dicom is False or (dicom is None and not is_dicom_input(volume)):
        return []
    if dicom and not is_dicom_input(volume):
        raise InputError(REFUSAL)
    try:
        return write_explanation_dicom(
            folder, volume, segments, explanation.map, method=explanation.method,
            target=str(explanation.target.get("label", "")),
            scalar_maps={key: value for key, value in explanation.extra_volumes.items() if key in PARAMETRIC_MAPS},
        )
    except Exception as error:  # automatic output never costs the rest of the results
        if dicom:
            raise
        warnings.warn(f"DICOM SEG / parametric map not written: {error}", stacklevel=2)
        return []
