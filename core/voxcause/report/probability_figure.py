"""The model's own probability next to the responsibility, on the same slice, for the report.

A segmenter's explanation folder holds ``probability.nii.gz`` (and, for a fold ensemble, ``uncertainty.nii.gz``;
`voxcause.probability`). A reader asks two questions of one slice: where does the model think the label is, and
which voxels made it think so. This figure answers both side by side: the axial slice through the map's peak,
the responsibility (`overlays.HEAT`, never white on a white lesion) in the first panel, the probability (viridis, 0..1) in the second, the uncertainty
(magma) in a third when there is one — all over the same scan (its named channel), in overview.png's radiological convention with the patient's
directions at the edges (`voxcause.orientation`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..orientation import axis_letters, draw_markers, placement
from ..overlays import HEAT


def shown_scan(paths: list[Path], values: np.ndarray) -> tuple[np.ndarray | None, str]:
    """The channel of the input shown under the map (the one the map's top voxels stand out in, as in
    overview.png) and its name; (None, "") when the input cannot be read on the map's grid."""
    from ..errors import InputError
    from ..io import read_image
    from ..outputs import channel_name, display_channel

    if not paths or not all(path.is_file() for path in paths):
        return None, ""
    try:
        volume = read_image([str(path) for path in paths] if len(paths) > 1 else str(paths[0]))
    except InputError:
        return None, ""
    if volume.spatial_shape != values.shape:
        return None, ""
    shown = display_channel(volume.array, values)
    return volume.array[shown], channel_name(volume, shown)


def _read(path: Path) -> sitk.Image:
    return sitk.ReadImage(str(path), sitk.sitkFloat32)


def probability_figure(out_dir: str | Path, scan_path: str | Path | Sequence[str | Path] | None = None, *,
                       label: str = "") -> bytes | None:
    """PNG bytes of responsibility | probability (| uncertainty) on the map's peak axial slice; None when the
    folder has no probability (a classifier) or the volumes are not 3D on one grid. ``scan_path``: the input (one
    file, or one file per channel); the channel the map stands out in is shown, and named."""
    out_dir = Path(out_dir)
    if not (out_dir / "probability.nii.gz").exists() or not (out_dir / "map.nii.gz").exists():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reference = _read(out_dir / "map.nii.gz")
    responsibility = sitk.GetArrayFromImage(reference)
    probability = sitk.GetArrayFromImage(_read(out_dir / "probability.nii.gz"))
    uncertainty = (sitk.GetArrayFromImage(_read(out_dir / "uncertainty.nii.gz"))
                   if (out_dir / "uncertainty.nii.gz").exists() else None)
    if responsibility.ndim != 3 or probability.shape != responsibility.shape:
        return None
    paths = [] if not scan_path else [scan_path] if isinstance(scan_path, (str, Path)) else list(scan_path)
    scan, channel = shown_scan([Path(path) for path in paths], responsibility)
    z = int(np.unravel_index(np.argmax(responsibility), responsibility.shape)[0])
    letters = axis_letters(reference.GetDirection(), 3)
    place = placement("axial", letters[1], letters[2])
    spacing = reference.GetSpacing()[::-1]
    aspect = place.aspect(spacing[1], spacing[2])
    panels = [("responsibility", responsibility, HEAT, None), (f"P({label})" if label else "probability",
                                                                  probability, "viridis", (0.0, 1.0))]
    if uncertainty is not None:
        panels.append(("uncertainty (SD across folds)", uncertainty, "magma", None))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 4), dpi=90)
    for ax, (title, values, colours, limits) in zip(np.atleast_1d(axes), panels, strict=True):
        if scan is not None:
            low, high = np.percentile(scan[scan > 0], [1, 99]) if (scan > 0).any() else (0.0, 1.0)
            ax.imshow(place.apply(scan[z]), cmap="gray", vmin=low, vmax=high, interpolation="nearest",
                      origin="lower", aspect=aspect)
        top = limits[1] if limits else max(float(np.percentile(values[values > 0], 99.5)) if (values > 0).any()
                                           else 1.0, 1e-6)
        shown = ax.imshow(np.ma.masked_less_equal(place.apply(values[z]), 0.02 * top), cmap=colours, alpha=0.7,
                          vmin=0, vmax=top, interpolation="nearest", origin="lower", aspect=aspect)
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
        ax.set_title(f"{title} ({channel})" if channel else title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        draw_markers(ax, place)
    fig.suptitle(f"axial slice {z} (the map's peak): the model's probability beside what it rests on", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
