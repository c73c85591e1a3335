"""Writing an explanation folder: map.nii.gz, explanation.seg.nrrd, summary.json, overview.png (for 2D inputs
also map.png and explanation.png at the picture's pixels: `voxcause.overlays`; for
segmenters, prediction.seg.nrrd: the model's own segmentation, to show beside the explanation, with
probability.nii.gz and, for ensembles, uncertainty.nii.gz: `voxcause.probability`; a method's further volumes as
``<name>.nii.gz``; for a DICOM input, explanation.seg.dcm and map.pm.dcm (+ probability.pm.dcm,
uncertainty.pm.dcm), named in summary.json's ``volumes`` as ``explanation_dicom``/``map_dicom``/``<name>_dicom``).

Everything is written into a staging folder first and moved into place at the end, so a failing run leaves
no half-written result.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .io import atomic_directory, write_image, write_segmentation
from .io.dicom_out import PARAMETRIC_MAPS, SEG_NAME, write_dicom_outputs
from .io.photo import is_photo
from .io.scaled import scaled_map, write_scaled_nifti
from .jsonio import dumps
from .levels import grey_colour, heat_colour, responsibility_levels
from .overlays import write_overlays
from .render import render_overview
from .sizes import mask_size

if TYPE_CHECKING:  # for annotations only: `Explanation.save` imports this module, never the other way round
    from .explanation import Explanation, Explanations

MASK_STYLE = {
    "sufficient": ("sufficient explanation", (0.0, 0.85, 1.0)),
    "contrastive": ("contrastive explanation", (0.85, 0.0, 0.85)),
    "target_region": ("target region", (0.2, 0.9, 0.2)),
}
LEVELS = 5
#: summary.json ``volumes`` names of the DICOM files written for a DICOM input (file -> name)
DICOM_VOLUMES = {SEG_NAME: "explanation_dicom", **{kind.file: f"{name}_dicom" for name, kind in PARAMETRIC_MAPS.items()}}


def mask_segments(explanation: Explanation) -> list:
    """Named, coloured segments of the explanations (and target region) that hold any voxel."""
    segments = []
    for key, mask in explanation.masks.items():
        if key.startswith("multiple_"):
            name, colour = f"explanation {key.split('_')[1]}", (0.3, 0.5, 1.0)
        else:
            name, colour = MASK_STYLE.get(key, (key.replace("_", " "), (0.6, 0.6, 0.6)))
        if mask.any():
            segments.append((name, mask, colour))
    return segments


def explanation_segments(explanation: Explanation) -> list:
    """Named, coloured segments: the explanations (`mask_segments`), then the responsibility levels
    (`voxcause.levels` bands; greys named "UNTRUSTED (certificate fail)" when the certificate fails)."""
    segments = mask_segments(explanation)
    # A map whose certificate fails must not look like a heat map where only segments are shown (Slicer).
    untrusted = (explanation.certificate or {}).get("verdict") == "fail"
    prefix = "UNTRUSTED (certificate fail) responsibility level" if untrusted else "responsibility level"
    bands = responsibility_levels(explanation.map, LEVELS)
    for level in range(1, LEVELS + 1):
        band = bands == level
        if band.any():
            colour = grey_colour(level, LEVELS) if untrusted else heat_colour(level, LEVELS)
            segments.append((f"{prefix} {level}", band, colour))
    return segments


def overview_lines(explanation: Explanation) -> list[str]:
    stats = explanation.stats
    lines = [
        f"target {explanation.target['label']!r}  score {explanation.score:.3f}  method {explanation.method}",
        f"forward passes {stats.get('forward_passes', 0)}  time {stats.get('seconds', 0):.1f} s  "
        f"device {stats.get('device', 'cpu')}",
    ]
    sufficient = explanation.details.get("sufficient")
    mask = explanation.masks.get("sufficient")
    if isinstance(sufficient, dict) and sufficient.get("voxels") and mask is not None:
        # counted on the image's voxels, as explanation.seg.nrrd holds it and the report measures it (the search's
        # own count, on the model's grid, stays in summary.json)
        lines.append(
            f"sufficient explanation {size_text(mask, explanation.volume.spacing)} "
            f"({100 * sufficient['fraction']:.2f}% of the searched box), score {sufficient['score']:.3f}"
        )
    return lines


def size_text(mask: np.ndarray, spacing) -> str:
    """``1,234 image voxels (5.67 ml)``: `explanation.mask_size` in words."""
    size = mask_size(mask, spacing)
    unit = f"{size['ml']:.2f} ml" if "ml" in size else f"{size['mm2']:.1f} mm²"
    return f"{size['image_voxels']:,} image voxels ({unit})"


def display_channel(array, values) -> int:
    """The channel in which the most responsible voxels stand out most from the rest (e.g. T1c for an
    enhancing tumour), so the overview shows what the model looked at."""
    if array.shape[0] == 1 or not (values > 0).any():
        return 0
    top = values >= np.quantile(values[values > 0], 0.9)
    rest = ~top
    contrast = [abs(float(c[top].mean() - c[rest].mean())) / (float(c[rest].std()) or 1.0) for c in array]
    return int(np.argmax(contrast))


def channel_name(volume, channel: int) -> str:
    """What the shown channel is: its file's name when each channel came from its own file, else its number."""
    if len(volume.paths) == volume.channels and volume.channels > 1:
        return Path(volume.paths[channel]).name.split(".")[0]
    return f"channel {channel + 1} of {volume.channels}" if volume.channels > 1 else ""


def save_explanation(explanation: Explanation, out_dir: str | Path, *, dicom: bool | None = None) -> Path:
    """Write the four result files of docs/design.md#the-explanation-folder into ``out_dir``, atomically
    (and explanation.seg.dcm + map.pm.dcm for a DICOM input or ``dicom=True``:
    `voxcause.io.dicom_out.write_dicom_outputs`)."""
    volume = explanation.volume
    with atomic_directory(out_dir) as staging:
        if scaled_map(volume.spatial_shape, explanation.stats.get("model_grid")):  # an upsampled model grid
            slope = write_scaled_nifti(explanation.map, volume.reference, staging / "map.nii.gz")
            if slope is not None:
                explanation.stats["map_encoding"] = f"int16 x scl_slope {slope:.6g} (error <= {slope / 2:.3g})"
        else:
            write_image(explanation.map, volume, staging / "map.nii.gz")
        for name, array in explanation.extra_volumes.items():
            write_image(np.asarray(array), volume, staging / f"{name}.nii.gz")
        segments = explanation_segments(explanation)
        if segments:
            write_segmentation(staging / "explanation.seg.nrrd", segments, volume)
        dicom_files = write_dicom_outputs(staging, explanation, segments, dicom)
        if explanation.predicted_labels is not None:
            labels = explanation.prediction.get("voxels_per_label", {})
            names = list(labels) or [str(i) for i in range(int(explanation.predicted_labels.max()) + 1)]
            predicted = [
                (f"predicted {name}", explanation.predicted_labels == index, heat_colour(index, len(names)))
                for index, name in enumerate(names)
                if index > 0 and (explanation.predicted_labels == index).any()
            ]
            if predicted:
                write_segmentation(staging / "prediction.seg.nrrd", predicted, volume)
        summary = explanation.summary()
        summary["volumes"].update({DICOM_VOLUMES[path.name]: path.name for path in dicom_files})
        if volume.spatial_dims == 2:  # a 2D picture or slice: the results as pictures too
            summary["volumes"].update(write_overlays(staging, volume.array, display_channel(
                volume.array, explanation.map), explanation.map, mask_segments(explanation)))
        (staging / "summary.json").write_text(dumps(summary), encoding="utf-8")
        shown = display_channel(volume.array, explanation.map)
        render_overview(
            staging / "overview.png",
            volume.array[shown],
            explanation.map,
            masks=explanation.masks,
            spacing=volume.spacing,
            title=f"voxcause {explanation.method}: why '{explanation.target['label']}'",
            lines=overview_lines(explanation),
            certificate=explanation.certificate,
            direction=volume.reference.GetDirection(),
            channel=channel_name(volume, shown),
            anatomical=not all(is_photo(path) for path in volume.paths),
        )
    return Path(out_dir)


def save_explanations(explanations: Explanations, out_dir: str | Path, *, dicom: bool | None = None) -> Path:
    """``--target all``: each target's explanation folder (`save_explanation`) under ``out_dir`` and the
    top summary.json listing them (`Explanations.summary`), moved into place together."""
    with atomic_directory(out_dir) as staging:
        for folder, explanation in zip(explanations.folders(), explanations.items, strict=True):
            save_explanation(explanation, staging / folder, dicom=dicom)
        (staging / "summary.json").write_text(dumps(explanations.summary()), encoding="utf-8")
    return Path(out_dir)
