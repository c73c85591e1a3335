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


#: The ``draw`` option of the explain tasks: what the one labelmap of the reply shows.
DRAW_LEVELS, DRAW_WHOLE = "levels", "explanation"


def explanation_segments(
    prefix: str, values: np.ndarray, levels: int, *, masks: dict[str, np.ndarray], verdict: str | None = None,
    draw: str = DRAW_LEVELS,
) -> Segments:
    """Heat levels of a map and the named masks (e.g. the sufficient explanation), one segment per voxel.

    A single labelmap holds one segment per voxel, so the levels and a mask must share the voxels both cover:

    - ``draw="levels"`` (default): every level whole, then each mask only where no level lies, named
      ``<prefix> sufficient explanation (outside the levels)``. The levels are the core's bands
      (`voxcause.levels.responsibility_levels`) unchanged, voxel for voxel the ``responsibility level k``
      segments of the core's ``explanation.seg.nrrd`` at the same number of levels.
    - ``draw="explanation"``: each mask whole, named ``<prefix> sufficient explanation``, then the levels only
      outside it (``<prefix> level k of N (outside the explanation)``).

    The reply's ``label_meaning`` (`label_meaning`) says this for each label drawn.

    A MONAI Label client shows segments, not the reply's JSON, so an explanation whose certificate ``verdict``
    is ``fail`` must not look like a heat map: its segments are named ``<prefix> UNTRUSTED (certificate fail)
    level k of N`` and drawn in greys.
    """
    untrusted = verdict == "fail"
    if untrusted:
        prefix = f"{prefix} {UNTRUSTED}"
    bands = responsibility_levels(values, levels)
    level_masks = [bands == level for level in range(1, levels + 1)]
    level_colours = [grey_colour(level, levels) if untrusted else heat_colour(level, levels)
                     for level in range(1, levels + 1)]
    named = [(*mask_segment(prefix, key), np.asarray(mask, dtype=bool)) for key, mask in masks.items()]
    if draw == DRAW_WHOLE:
        covered = np.any([mask for _, _, mask in named], axis=0) if named else np.zeros(bands.shape, bool)
        names = [name for name, _, _ in named] + [f"{name} {OUTSIDE_EXPLANATION}" for name in
                                                   level_names(prefix, levels)]
        seg_masks = [mask for _, _, mask in named] + [mask & ~covered for mask in level_masks]
        colours = [colour for _, colour, _ in named] + level_colours
    else:
        names = level_names(prefix, levels) + [f"{name} {OUTSIDE_LEVELS}" for name, _, _ in named]
        seg_masks = level_masks + [mask & (bands == 0) for _, _, mask in named]
        colours = level_colours + [colour for _, colour, _ in named]
    return Segments(names, seg_masks, colours).nonempty()


OUTSIDE_LEVELS = "(outside the levels)"
OUTSIDE_EXPLANATION = "(outside the explanation)"


def label_meaning(names: list[str]) -> dict[str, str]:
    """``{label name: what its voxels are}`` for an explain reply: a level, a whole explanation, or the part of
    one the labelmap could show."""
    meaning = {}
    for name in names:
        if name.endswith(OUTSIDE_LEVELS):
            meaning[name] = ("the part of the explanation outside every drawn level (the whole mask: draw="
                             f"{DRAW_WHOLE}, or explanation.seg.nrrd)")
        elif name.endswith(OUTSIDE_EXPLANATION):
            meaning[name] = "this responsibility level where the explanation does not lie (draw=levels: whole)"
        elif " level " in name:
            meaning[name] = "voxels of this responsibility level (1 = least, N = most responsible)"
        else:
            meaning[name] = "the whole explanation: these voxels alone keep the decision"
    return meaning
