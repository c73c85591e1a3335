"""Overview pictures: orthogonal slices through the map's peak, the map as a heat overlay, explanation
contours, and the numbers that matter — what a person looks at first."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io.atomic import atomic_path  # noqa: E402
from .orientation import axis_letters, draw_markers, placement  # noqa: E402
from .overlays import HEAT  # noqa: E402

CONTOURS = {"sufficient": "cyan", "target_region": "lime", "contrastive": "magenta"}


# Verdict band of the overview: colour and headline per certificate verdict.
VERDICT_STYLE = {
    "pass": ("#1b7f3b", "CERTIFICATE PASS"),
    "weak": ("#b36b00", "CERTIFICATE WEAK"),
    "fail": ("#b3001b", "CERTIFICATE FAIL - do not read this map as the cause"),
}


def _distinct_contours(masks: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, str, list[str]]]:
    """The `CONTOURS` masks to draw: one per distinct voxel set, with the names of every mask holding it."""
    distinct: dict[str, tuple[np.ndarray, str, list[str]]] = {}
    for name, colour in CONTOURS.items():
        mask = masks.get(name)
        if mask is None or not mask.any():
            continue
        same = next((key for key, (other, _, _) in distinct.items() if np.array_equal(other, mask)), None)
        if same is None:
            distinct[name] = (mask, colour, [name])
        else:
            distinct[same][2].append(name)
    return distinct


def window(image: np.ndarray) -> tuple[float, float]:
    """Display window (low, high) of an intensity image: its 1st and 99.5th percentiles."""
    low, high = np.percentile(image, [1, 99.5])
    return float(low), float(high if high > low else low + 1)


def views(
    shape: tuple[int, ...], centre: tuple[int, ...], spacing: tuple[float, ...], *, name_2d: str = "image"
) -> list[tuple[str, tuple, float]]:
    """(name, index, aspect) of the slices to show: axial, coronal, sagittal through ``centre`` of a
    (z, y, x) array, or the one 2D image (named ``name_2d``); aspects from the voxel ``spacing``."""
    if len(shape) == 2:
        return [(name_2d, (slice(None), slice(None)), spacing[0] / spacing[1])]
    z, y, x = centre
    sz, sy, sx = spacing
    return [
        ("axial", (z, slice(None), slice(None)), sy / sx),
        ("coronal", (slice(None), y, slice(None)), sz / sx),
        ("sagittal", (slice(None), slice(None), x), sz / sy),
    ]


def render_overview(
    path: str | Path,
    image: np.ndarray,
    values: np.ndarray,
    *,
    masks: dict[str, np.ndarray],
    spacing: tuple[float, ...],
    title: str,
    lines: list[str],
    certificate: dict | None = None,
    direction: tuple[float, ...] | None = None,
    channel: str | None = None,
    anatomical: bool = True,
) -> Path:
    """Write a PNG: one channel of the image with the map overlaid and explanation contours, plus text lines.

    Slices are shown in radiological convention (`voxcause.orientation`) with the patient's directions at their
    edges; the legend names only what is drawn, and masks holding the same voxels are drawn once and named together.

    Args:
        image: (*S) intensity array (2D or 3D); values: (*S) map; masks: named bool masks drawn as contours.
        direction: the image's direction cosines (SimpleITK ``GetDirection()``); channel: the shown channel's name;
            anatomical: False for pictures (photographs, screenshots): shown upright, without R/L markers.
        certificate: `voxcause.certificate.Certificate.to_dict()`: its verdict and reason go in a coloured band
            under the title (a failed explanation is stamped as untrusted, so it never looks like success).
    """
    peak = np.unravel_index(int(np.argmax(values)), values.shape) if values.size else (0,) * values.ndim
    shown_views = views(image.shape, tuple(int(p) for p in peak), spacing)
    low, high = window(image)
    positive_peak = float(values.max()) if values.size and values.max() > 0 else 1.0
    letters = axis_letters(direction, image.ndim)
    contours = _distinct_contours(masks)
    drawn: set[str] = set()
    figure, axes = plt.subplots(1, len(shown_views), figsize=(4.2 * len(shown_views), 4.9), squeeze=False)
    for axis, (name, index, _) in zip(axes[0], shown_views, strict=True):
        rows, columns = (k for k, part in enumerate(index) if isinstance(part, slice))
        place = placement(name, letters[rows], letters[columns])
        aspect = place.aspect(spacing[rows], spacing[columns])
        axis.imshow(place.apply(image[index]), cmap="gray", vmin=low, vmax=high, origin="lower", aspect=aspect)
        overlay = np.ma.masked_less_equal(place.apply(values[index]), 0.05 * positive_peak)
        shown = axis.imshow(overlay, cmap=HEAT, vmin=0, vmax=positive_peak, alpha=0.6, origin="lower", aspect=aspect)
        for mask_name, (mask, colour, _) in contours.items():
            if mask[index].any():
                axis.contour(place.apply(mask[index]).astype(float), levels=[0.5], colors=colour, linewidths=1.2)
                drawn.add(mask_name)
        axis.set_title(f"{name} ({channel})" if channel else name, fontsize=10)
        if anatomical:
            draw_markers(axis, place)
        axis.axis("off")
    # its own axes right of the panels: a colour bar stolen from the panels' space overlapped the last one
    figure.colorbar(shown, cax=figure.add_axes((0.915, 0.3, 0.012, 0.5)), label="responsibility / attribution")
    legend = "  ".join(f"{colour}: {' = '.join(n.replace('_', ' ') for n in names)}"
                       for mask_name, (_, colour, names) in contours.items() if mask_name in drawn)
    figure.suptitle(title, fontsize=12, fontweight="bold")
    if certificate is not None:
        verdict = certificate["verdict"]
        colour, headline = VERDICT_STYLE[verdict]
        figure.text(0.5, 0.905, f"{headline}: {certificate['reason']}", ha="center", va="center", fontsize=9,
                    color="white", fontweight="bold", wrap=True,
                    bbox={"facecolor": colour, "edgecolor": "none", "boxstyle": "round,pad=0.35"})
    figure.text(
        0.01, 0.01, "\n".join(lines + ([legend] if legend else [])), fontsize=8.5, family="monospace", va="bottom"
    )
    figure.subplots_adjust(bottom=0.05 + 0.035 * (len(lines) + 1), top=0.84, left=0.01, right=0.89, wspace=0.08)
    with atomic_path(path) as temp:
        figure.savefig(temp, dpi=110, format="png")
    plt.close(figure)
    return Path(path)
