"""PNG overlays of a 2D explanation at the picture's own pixels: what a reader of a 2D slice or photograph
opens, beside the NIfTI/NRRD files that need a viewer.

``map.png`` is the picture with the map laid over it (a colour scale without white or grey, so a heat spot stays
distinguishable from bright tissue; voxels under 5% of the map's peak left clear) and ``explanation.png`` the
picture with each explanation filled in its colour and outlined. Both have exactly the input's size and row
order, so they line up pixel for pixel with the original when flipped between.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from scipy import ndimage

from .io.atomic import atomic_path

HEAT = "plasma"  # dark violet -> yellow: never white, never grey
HEAT_ALPHA = 0.6
FILL_ALPHA = 0.35
CLEAR_BELOW = 0.05  # share of the map's peak below which the picture stays uncovered

Segment = tuple[str, np.ndarray, Sequence[float]]


def base_picture(array: np.ndarray, channel: int) -> np.ndarray:
    """(H, W, 3) floats in [0, 1]: a 3-channel picture in colour, else ``channel`` in grey; 1st-99.5th percentile
    window."""
    shown = array if array.shape[0] == 3 else array[channel : channel + 1]
    low, high = np.percentile(shown, [1, 99.5])
    scaled = np.clip((shown - low) / (high - low if high > low else 1.0), 0, 1)
    return np.repeat(scaled, 3 // scaled.shape[0], axis=0).transpose(1, 2, 0)


def heat_overlay(picture: np.ndarray, values: np.ndarray) -> np.ndarray:
    peak = float(values.max()) if values.size and values.max() > 0 else 0.0
    if peak == 0.0:
        return picture
    level = np.clip(values / peak, 0, 1)
    colours = colormaps[HEAT](level)[..., :3]
    alpha = np.where(level > CLEAR_BELOW, HEAT_ALPHA, 0.0)[..., None]
    return picture * (1 - alpha) + colours * alpha


def mask_overlay(picture: np.ndarray, segments: Sequence[Segment]) -> np.ndarray:
    out = picture.copy()
    for _, mask, colour in segments:
        rgb = np.asarray(colour, dtype=float)[:3]
        out[mask] = out[mask] * (1 - FILL_ALPHA) + rgb * FILL_ALPHA
        edge = mask & ~ndimage.binary_erosion(mask)
        out[edge] = rgb
    return out


def write_png(path: Path, rgb: np.ndarray) -> Path:
    from PIL import Image

    with atomic_path(path) as temp:
        Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(temp, format="PNG")
    return path


def write_overlays(
    folder: Path, array: np.ndarray, channel: int, values: np.ndarray, segments: Sequence[Segment]
) -> dict[str, str]:
    """Write map.png (and explanation.png when ``segments`` hold any) for a 2D (C, H, W) ``array``;
    ``{summary volumes name: file name}``."""
    picture = base_picture(array, channel)
    files = {"map_png": write_png(folder / "map.png", heat_overlay(picture, values)).name}
    if segments:
        files["explanation_png"] = write_png(folder / "explanation.png", mask_overlay(picture, segments)).name
    return files
