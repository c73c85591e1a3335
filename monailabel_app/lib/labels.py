"""Label schemes: how a task's result becomes a labelmap the MONAI Label Slicer client can draw.

The client imports a result as one labelmap whose values 1..N map, in order, to the reply's
``label_names``; names must be unique across the app because the segments of every task land in one
segmentation node. So every task draws disjoint segments, numbers them 1..N with no gaps (an empty level
is dropped and the later ones move down), and names them with the task's prefix ("rex level 3 of 5").
Levels and colours come from the core (`voxcause.levels`: dark red -> yellow, hottest last), so they match
the ``explanation.seg.nrrd`` the core writes beside the float map. The client keeps the colours when its
file-extension setting is ``.seg.nrrd``; the reply is a single-layer ``.seg.nrrd`` that also reads as a
plain labelmap with any other setting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from voxcause.levels import grey_colour, heat_colour, responsibility_levels
from voxcause.outputs import MASK_STYLE

Colour = tuple[float, float, float]


@dataclass
class Segments:
    """Disjoint named, coloured masks in drawing order; `label_names` numbers them 1..N."""

    names: list[str]
    masks: list[np.ndarray]
    colours: list[Colour]

    def nonempty(self) -> Segments:
        keep = [index for index, mask in enumerate(self.masks) if mask.any()]
        return Segments([self.names[i] for i in keep], [self.masks[i] for i in keep], [self.colours[i] for i in keep])

    def label_names(self) -> dict[str, int]:
        """``{name: value}`` with values 1..N in drawing order (MONAI Label's ``label_names``)."""
        return {name: index for index, name in enumerate(self.names, start=1)}

    def label_colours(self) -> dict[str, list[float]]:
        return {name: [round(c, 3) for c in colour] for name, colour in zip(self.names, self.colours, strict=True)}

    def as_tuples(self) -> list[tuple[str, np.ndarray, Colour]]:
        return list(zip(self.names, self.masks, self.colours, strict=True))


def level_names(prefix: str, levels: int) -> list[str]:
    """Segment names of ``levels`` heat levels, coolest first, e.g. ``rex level 1 of 5``."""
    return [f"{prefix} level {index} of {levels}" for index in range(1, levels + 1)]


UNTRUSTED = "UNTRUSTED (certificate fail)"


def declared_labels(prefix: str, levels: int, *, extra: tuple[str, ...] = ()) -> dict[str, int]:
    """The labels a task declares in /info for its default options (the reply says what was drawn)."""
    names = level_names(prefix, levels) + [f"{prefix} {name}" for name in extra]
    return {name: index for index, name in enumerate(names, start=1)}


def mask_segment(prefix: str, key: str) -> tuple[str, Colour]:
    """Name and colour of an explanation mask (``sufficient`` ...), as the core draws it."""
    name, colour = MASK_STYLE.get(key, (key.replace("_", " "), (0.6, 0.6, 0.6)))
    return f"{prefix} {name}", colour


def explanation_segments(
    prefix: str, values: np.ndarray, levels: int, *, masks: dict[str, np.ndarray], verdict: str | None = None
) -> Segments:
    """Heat levels of a map, then the named masks (e.g. the sufficient explanation) where no level lies.

    The levels are the core's bands (`voxcause.levels.responsibility_levels`) unchanged, voxel for voxel the
    ``responsibility level k`` segments of the ``explanation.seg.nrrd`` the core writes (and the Slicer panel
    shows) at the same number of levels. A single labelmap holds one segment per voxel, so a mask takes only
    the voxels outside every level: a sufficient explanation is drawn as its levels plus its own segment
    around them (drawn over the levels it would erase them: it holds most of the top bands). Its whole mask is
    in the kept explanation.seg.nrrd, its size in the reply's ``sufficient``.

    A MONAI Label client shows segments, not the reply's JSON, so an explanation whose certificate ``verdict``
    is ``fail`` must not look like a heat map: its segments are named ``<prefix> UNTRUSTED (certificate fail)
    level k of N`` and drawn in greys.
    """
    untrusted = verdict == "fail"
    if untrusted:
        prefix = f"{prefix} {UNTRUSTED}"
    bands = responsibility_levels(values, levels)
    names = level_names(prefix, levels)
    seg_masks = [bands == level for level in range(1, levels + 1)]
    colours = [grey_colour(level, levels) if untrusted else heat_colour(level, levels) for level in range(1, levels + 1)]
    for key, mask in masks.items():
        name, colour = mask_segment(prefix, key)
        names.append(name)
        seg_masks.append(np.asarray(mask, dtype=bool) & (bands == 0))
        colours.append(colour)
    return Segments(names, seg_masks, colours).nonempty()
