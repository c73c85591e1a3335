"""The counterfactual overview picture: original / removed / only side by side with their scores.

Rows are the axial, coronal and sagittal slices through the region's centre (one row for 2D); the
region's outline is drawn on every panel so the eye finds where the intervention acted. All three images
share one intensity window (that of the original), so a removal that left a brighter or darker patch shows.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from ..io.atomic import atomic_path  # noqa: E402
from ..orientation import axis_letters, draw_markers, placement  # noqa: E402
from ..render import views, window  # noqa: E402


def render_counterfactual(path: str | Path, images: list[tuple[str, np.ndarray]], region: np.ndarray, *,
                          spacing: tuple[float, ...], title: str, lines: list[str],
                          direction: tuple[float, ...] | None = None) -> Path:
    """Write a PNG with one column per image and one row per orthogonal view through the region's centre.

    Args:
        images: ``(column title, (*S) array)`` pairs, e.g. original / removed / only (first channel).
        region: bool (*S), outlined on every panel.
        spacing: voxel size per axis (for the aspect ratio); title, lines: heading and text under it.
        direction: the image's direction cosines: panels in radiological convention with R/L (A/P, S/I) markers
            (`voxcause.orientation`).
    """
    letters = axis_letters(direction, region.ndim)
    centre = tuple(int(round(c)) for c in ndimage.center_of_mass(region)) if region.any() else \
        tuple(s // 2 for s in region.shape)
    rows = views(region.shape, centre, spacing, name_2d="")
    low, high = window(images[0][1])
    figure, axes = plt.subplots(len(rows), len(images), figsize=(3.6 * len(images), 3.3 * len(rows) + 1.2),
                                squeeze=False)
    for row, (view, index, _) in enumerate(rows):
        plane_rows, plane_columns = (k for k, part in enumerate(index) if isinstance(part, slice))
        place = placement(view or "image", letters[plane_rows], letters[plane_columns])
        aspect = place.aspect(spacing[plane_rows], spacing[plane_columns])
        for column, (name, image) in enumerate(images):
            axis = axes[row, column]
            axis.imshow(place.apply(image[index]), cmap="gray", vmin=low, vmax=high, origin="lower", aspect=aspect,
                        interpolation="nearest")
            draw_markers(axis, place)
            if region[index].any():
                # no origin= here: contour's origin="lower" would shift the outline by half a voxel
                axis.contour(place.apply(region[index]).astype(float), levels=[0.5], colors="lime", linewidths=0.8)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(name, fontsize=10)
            if column == 0 and view:
                axis.set_ylabel(view, fontsize=9)
    figure.suptitle(title, fontsize=12, fontweight="bold", y=1 - 0.15 / figure.get_figheight())
    figure.text(0.01, 0.005, "\n".join(lines), fontsize=8.5, family="monospace", va="bottom")
    figure.subplots_adjust(left=0.04, right=0.99, top=1 - 1.0 / figure.get_figheight(),
                           bottom=(0.25 + 0.16 * len(lines)) / figure.get_figheight(), wspace=0.03, hspace=0.06)
    with atomic_path(path) as temp:
        figure.savefig(temp, dpi=110, format="png")
    plt.close(figure)
    return Path(path)
