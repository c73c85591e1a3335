"""Attribution map -> binary mask by adaptive percentile thresholding inside the foreground.

Why adaptive: one fixed percentile is wrong for most maps. A ReX map with a compact cause needs the top 1%,
a blurry CAM the top 10%; a fixed cut gives either a speck or half the brain. So we try percentiles from
high to low and keep the *highest* one whose mask is of plausible size and mostly one connected piece
(clinicians read "a 14 ml region", not a spray of voxels) and whose cut is at most half the map's peak
(the half-maximum region, as a full width at half maximum describes a blob: without this rule the top 0.5%
of a smooth map always wins and a 40 ml cause is reported as its 9 ml core). The half-maximum cut itself
is one of the candidates (at its own percentile rank), so a plateau or a blob is cut at half its height
rather than at the next round percentile below it. If none qualifies we fall
back, in order, to the single-piece cut closest to half maximum, to the highest percentile of plausible
size (many pieces), then to the candidate nearest the size bounds, and say which rule chose the mask in
`ThresholdResult.rule`.

Shapes: maps and masks are numpy arrays shaped `(*S)` (2D `(y, x)` or 3D `(z, y, x)`); an image for the
foreground is `(C, *S)` or `(*S)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from voxcause.errors import InputError

DEFAULT_PERCENTILES = (99.5, 99.0, 98.0, 97.0, 95.0, 92.5, 90.0, 85.0, 80.0)


@dataclass
class ThresholdResult:
    """The chosen mask and how it was chosen.

    Attributes:
        mask: bool array `(*S)`.
        percentile: percentile of the foreground map values used (None when the map is flat).
        threshold: map value cut (voxels with map >= threshold and > 0 are in the mask).
        rule: "plausible_single" (size ok, one dominant component), "plausible_size" (size ok, several
            pieces), "nearest_size" (no candidate had a plausible size: closest one kept) or "flat_map".
        tried: one row per percentile: {percentile, threshold, voxels, fraction, largest_share}.
    """

    mask: np.ndarray
    percentile: float | None
    threshold: float | None
    rule: str
    tried: list[dict] = field(default_factory=list)


def foreground_mask(image: np.ndarray) -> np.ndarray:
    """Foreground (brain/body) of an image `(C, *S)` as a bool array `(*S)`.

    Skull-stripped and z-scored images have an exact-zero background: then the foreground is "any channel
    non-zero". Images with a noisy background get an Otsu cut on the first channel, keeping the largest
    component with holes filled (dark ventricles stay in).
    """
    channels = np.asarray(image, dtype=np.float32)
    nonzero = np.any(channels != 0, axis=0)
    if 0 < nonzero.mean() < 0.95:
        return nonzero
    first = channels[0]
    fg = first > _otsu(first)
    if not fg.any():
        return np.ones(first.shape, dtype=bool)
    labels, n = ndimage.label(fg)
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        fg = labels == (1 + int(np.argmax(sizes)))
    return ndimage.binary_fill_holes(fg)


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold (between-class variance maximum) in numpy, so the core needs no scikit-image."""
    v = values[np.isfinite(values)].ravel()
    hist, edges = np.histogram(v, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist).astype(np.float64)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centers[int(np.argmax(between))])


def largest_component_share(mask: np.ndarray) -> float:
    """Share of the mask's voxels in its largest 26-connected (8 in 2D) component; 0 for an empty mask."""
    if not mask.any():
        return 0.0
    labels, n = ndimage.label(mask, structure=np.ones((3,) * mask.ndim))
    sizes = np.bincount(labels.ravel())[1:]
    return float(sizes.max() / sizes.sum())


def adaptive_threshold(
    attribution: np.ndarray,
    *,
    foreground: np.ndarray | None = None,
    percentiles: tuple[float, ...] = DEFAULT_PERCENTILES,
    min_fraction: float = 0.0001,
    max_fraction: float = 0.15,
    min_voxels: int = 8,
    min_largest_share: float = 0.5,
    peak_fraction: float | None = 0.5,
) -> ThresholdResult:
    """Choose the highest percentile whose mask is plausible; see the module docstring for the fallbacks.

    Args:
        attribution: map `(*S)`, higher = more responsible; only positive values can enter the mask.
        foreground: bool `(*S)`; percentiles are taken over the map inside it (default: everywhere).
        percentiles: candidates, tried from high to low.
        min_fraction, max_fraction: plausible mask size as a share of the foreground (default
            0.01%-15%: 0.16 ml to 240 ml of a 1.6 l brain).
        min_voxels: a mask smaller than this is never plausible (default 8).
        min_largest_share: "mostly one component" = the largest component holds at least this share.
        peak_fraction: the cut must be at most this fraction of the peak (3-voxel box-mean maximum) to count as
            "plausible_single" (default 0.5, half maximum), and this cut is itself a candidate; None drops
            the rule and keeps only the percentile candidates.

    Returns:
        `ThresholdResult`. Example::

            >>> m = np.zeros((32, 32, 32), np.float32); m[10:16, 10:16, 10:16] = 1.0
            >>> adaptive_threshold(m).mask.sum()
            216
    """
    amap = np.asarray(attribution, dtype=np.float32)
    if foreground is None:
        foreground = np.ones(amap.shape, dtype=bool)
    foreground = np.asarray(foreground, dtype=bool)
    if foreground.shape != amap.shape:
        raise InputError(
            f"foreground mask shape {foreground.shape} differs from the map's {amap.shape}; "
            "pass a mask on the map's grid"
        )
    if not (0 <= min_fraction < max_fraction <= 1):
        raise InputError(f"need 0 <= min_fraction < max_fraction <= 1, got {min_fraction}, {max_fraction}")
    inside = np.where(foreground & np.isfinite(amap), amap, 0.0)
    values = inside[foreground]
    n_fg = int(foreground.sum())
    if n_fg == 0 or not (values > 0).any() or float(values.max()) == float(values.min()):
        return ThresholdResult(np.zeros(amap.shape, dtype=bool), None, None, "flat_map", [])

    # Peak = maximum of the 3-voxel box mean: exact on plateaus, ~0.96 of the top of a smooth blob, and a
    # single hot voxel (common in gradient maps) counts for 1/27 of its value.
    peak = float(ndimage.uniform_filter(inside, size=3, mode="constant").max())
    if peak <= 0:
        peak = float(values.max())
    ceiling = np.inf if peak_fraction is None else peak_fraction * peak
    cuts = [(float(p), float(np.percentile(values, p))) for p in sorted(percentiles, reverse=True)]
    if peak_fraction is not None:  # the half-maximum cut itself is a candidate, at its own percentile rank
        cuts.append((round(100.0 * float((values < ceiling).mean()), 3), float(ceiling)))
    tried = []
    for p, thr in sorted(set(cuts), key=lambda c: (-c[1], -c[0])):
        # A cut at (or below) the map's floor would take every tied voxel; lift it just above.
        if thr <= 0 or thr <= float(values.min()):
            thr = float(np.nextafter(np.float32(max(thr, 0.0)), np.float32(np.inf)))
        mask = (inside >= thr) & (inside > 0)
        voxels = int(mask.sum())
        tried.append({
            "percentile": p,
            "threshold": thr,
            "voxels": voxels,
            "fraction": voxels / n_fg,
            "largest_share": largest_component_share(mask),
            "_mask": mask,
        })

    def plausible(row: dict) -> bool:
        return row["voxels"] >= min_voxels and min_fraction <= row["fraction"] <= max_fraction

    chosen, rule = None, ""
    for row in tried:
        if plausible(row) and row["largest_share"] >= min_largest_share and row["threshold"] <= ceiling:
            chosen, rule = row, "plausible_single"
            break
    if chosen is None:  # every single-piece cut is above half maximum: take the one closest to it
        single = [r for r in tried if plausible(r) and r["largest_share"] >= min_largest_share]
        if single:
            chosen, rule = single[-1], "plausible_single"
    if chosen is None:
        sized = [r for r in tried if plausible(r)]
        if sized:
            chosen, rule = sized[0], "plausible_size"
    if chosen is None:
        nonempty = [r for r in tried if r["voxels"] > 0]
        if not nonempty:
            return ThresholdResult(np.zeros(amap.shape, dtype=bool), None, None, "flat_map", _public(tried))

        lo = max(min_fraction, min_voxels / n_fg)

        def distance(r: dict) -> float:  # log-ratio to the nearest size bound
            return max(np.log(lo / r["fraction"]), np.log(r["fraction"] / max_fraction), 0.0)

        chosen, rule = min(nonempty, key=distance), "nearest_size"
    return ThresholdResult(chosen["_mask"], chosen["percentile"], chosen["threshold"], rule, _public(tried))


def _public(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
