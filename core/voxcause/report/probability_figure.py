"""The model's own probability next to the responsibility, on the same slice, for the report.

A segmenter's explanation folder holds ``probability.nii.gz`` (and, for a fold ensemble, ``uncertainty.nii.gz``;
`voxcause.probability`). A reader asks two questions of one slice: where does the model think the label is, and
which voxels made it think so. This figure answers both side by side: the axial slice through the map's peak,
the responsibility (hot) in the first panel, the probability (viridis, 0..1) in the second, the uncertainty
(magma) in a third when there is one — all over the same scan, in LPS display (R on the left).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def _lps(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.DICOMOrient(sitk.ReadImage(str(path), sitk.sitkFloat32), "LPS"))


def probability_figure(out_dir: str | Path, scan_path: str | Path | None = None, *, label: str = "") -> bytes | None:
    """PNG bytes of responsibility | probability (| uncertainty) on the map's peak axial slice; None when the
    folder has no probability (a classifier) or the volumes are not 3D on one grid."""
    out_dir = Path(out_dir)
    if not (out_dir / "probability.nii.gz").exists() or not (out_dir / "map.nii.gz").exists():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    responsibility = _lps(out_dir / "map.nii.gz")
    probability = _lps(out_dir / "probability.nii.gz")
    uncertainty = _lps(out_dir / "uncertainty.nii.gz") if (out_dir / "uncertainty.nii.gz").exists() else None
    scan = _lps(Path(scan_path)) if scan_path and Path(scan_path).is_file() else None
    if responsibility.ndim != 3 or probability.shape != responsibility.shape:
        return None
    if scan is not None and scan.shape != responsibility.shape:
        scan = None
    z = int(np.unravel_index(np.argmax(responsibility), responsibility.shape)[0])
    panels = [("responsibility", responsibility, "hot", None), (f"P({label})" if label else "probability",
                                                                  probability, "viridis", (0.0, 1.0))]
    if uncertainty is not None:
        panels.append(("uncertainty (SD across folds)", uncertainty, "magma", None))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 4), dpi=90)
    for ax, (title, values, colours, limits) in zip(np.atleast_1d(axes), panels, strict=True):
        if scan is not None:
            low, high = np.percentile(scan[scan > 0], [1, 99]) if (scan > 0).any() else (0.0, 1.0)
            ax.imshow(scan[z], cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        top = limits[1] if limits else max(float(np.percentile(values[values > 0], 99.5)) if (values > 0).any()
                                           else 1.0, 1e-6)
        shown = ax.imshow(np.ma.masked_less_equal(values[z], 0.02 * top), cmap=colours, alpha=0.7, vmin=0, vmax=top,
                          interpolation="nearest")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.text(0.02, 0.5, "R", color="yellow", transform=ax.transAxes, fontsize=10, va="center")
    fig.suptitle(f"axial slice {z} (the map's peak): the model's probability beside what it rests on", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
