"""PNG montages of sample patients: axial, coronal and sagittal slices through the lesion, all sequences.

Used to look at the generator's output (docs/images/samples_<kind>.png) the way a radiologist would:
radiological orientation is not attempted, slices are shown with superior / anterior up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .contrast import SEQUENCES
from .generator import Patient


def lesion_centre_index(patient: Patient) -> tuple[int, int, int]:
    """Voxel (z, y, x) of the lesion's centre of mass, or the volume centre when tumour-free."""
    mask = patient.label > 0
    if not mask.any():
        return tuple(n // 2 for n in mask.shape)
    return tuple(int(round(c.mean())) for c in np.nonzero(mask))


def save_montage(patient: Patient, path: str | Path, *, title: str | None = None, contour: bool = True) -> Path:
    """Write a 3 x 4 (views x sequences) PNG of `patient` through its lesion; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z, y, x = lesion_centre_index(patient)
    sz, sy, sx = (patient.spacing[2], patient.spacing[1], patient.spacing[0])
    views = [
        ("axial", lambda a: a[z], sy / sx),
        ("coronal", lambda a: a[:, y], sz / sx),
        ("sagittal", lambda a: a[:, :, x], sz / sy),
    ]
    fig, axes = plt.subplots(3, 4, figsize=(12, 9.6), facecolor="black")
    for row, (view, cut, aspect) in enumerate(views):
        for col, sequence in enumerate(SEQUENCES):
            image = cut(patient.channels[col])
            high = np.percentile(patient.channels[col], 99.7)
            ax = axes[row, col]
            ax.imshow(image, cmap="gray", origin="lower", vmin=0, vmax=high, aspect=aspect,
                      interpolation="bilinear")
            if contour and patient.label.any():
                ax.contour(cut(patient.label > 0).astype(float), levels=[0.5], colors=["#ff5050"],
                           linewidths=0.6, alpha=0.7)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(sequence, color="white")
            if col == 0:
                ax.text(-0.06, 0.5, view, color="white", rotation=90, va="center", transform=ax.transAxes)
    fig.suptitle(title or f"{patient.kind} (seed {patient.seed})", color="white")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, facecolor="black")
    plt.close(fig)
    return path


def save_class_montages(out_dir: str | Path) -> list[Path]:
    """One montage per kind (the demo seeds) as ``samples_<kind>.png`` in `out_dir`."""
    from . import DEMO_SEEDS
    from .generator import KINDS, LABELS, make_patient

    paths = []
    for kind, label in zip(KINDS, LABELS, strict=True):
        patient = make_patient(DEMO_SEEDS[kind], kind)
        title = f"{label} - synthetic patient (seed {patient.seed}), MNI152 anatomy, 2 mm"
        paths.append(save_montage(patient, Path(out_dir) / f"samples_{kind}.png", title=title, contour=False))
    return paths


if __name__ == "__main__":  # python -m voxcause.samples.montage docs/images
    import sys

    for written in save_class_montages(sys.argv[1] if len(sys.argv) > 1 else "docs/images"):
        print(written)
