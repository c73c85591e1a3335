"""Every figure in one convention: radiological orientation, with the patient's directions marked.

Radiological convention: an axial or coronal slice is seen from the feet / the front, so the patient's right is on
the viewer's LEFT; axial slices have anterior up, coronal and sagittal slices superior up, sagittal slices anterior
on the left. Which way an array axis points in the patient comes from the image's direction cosines (ITK/DICOM
LPS: +x left, +y posterior, +z superior), so a slice is transposed and flipped into the convention whatever the
file's orientation, and the markers (R/L, A/P, S/I) name what is really at each edge — an oblique or unusual
acquisition is shown as stored, truthfully marked. A 2D picture (no direction) comes out upright.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "S": "I", "I": "S"}
LPS = ("L", "P", "S")  # the patient direction of +x, +y, +z in ITK/DICOM physical space
#: (screen right, screen up) of each view, radiological convention (the screen's origin is its lower left)
SCREEN = {"axial": ("L", "A"), "coronal": ("L", "S"), "sagittal": ("P", "S"), "image": ("L", "A")}


def axis_letters(direction: Sequence[float] | None, ndim: int) -> list[str]:
    """For each numpy array axis ((z, y, x) order), the patient direction its index runs towards."""
    matrix = np.eye(ndim) if direction is None else np.asarray(direction, dtype=float).reshape(ndim, ndim)
    letters = []
    for axis in range(ndim):
        vector = matrix[:, ndim - 1 - axis]  # numpy axis k is ITK index axis ndim-1-k
        main = int(np.argmax(np.abs(vector)))
        letters.append(LPS[main] if vector[main] > 0 else OPPOSITE[LPS[main]])
    return letters


@dataclass(frozen=True)
class Placement:
    """How one slice (rows, columns) is put on screen: transposed and/or flipped, and what lies at each edge."""

    transpose: bool
    flip_rows: bool
    flip_columns: bool
    right: str  # patient direction at the screen's right edge
    up: str  # ... at its top edge

    def apply(self, plane: np.ndarray) -> np.ndarray:
        """The (rows, columns) slice as it is drawn with ``origin="lower"``."""
        out = plane.T if self.transpose else plane
        if self.flip_rows:
            out = out[::-1]
        if self.flip_columns:
            out = out[:, ::-1]
        return out

    def aspect(self, row_spacing: float, column_spacing: float) -> float:
        """imshow's aspect (height of a row over width of a column) after the transpose."""
        return column_spacing / row_spacing if self.transpose else row_spacing / column_spacing

    def markers(self) -> dict[str, str]:
        """The letter at each edge: left, right, top, bottom."""
        return {"left": OPPOSITE[self.right], "right": self.right, "top": self.up, "bottom": OPPOSITE[self.up]}


def placement(view: str, row_letter: str, column_letter: str) -> Placement:
    """Put a slice whose rows run towards ``row_letter`` and columns towards ``column_letter`` into ``view``'s
    convention (`SCREEN`); axes that cannot match (an oblique slice) keep their order, marked as they are."""
    right, up = SCREEN.get(view, SCREEN["image"])
    transpose = row_letter in (right, OPPOSITE[right]) and column_letter not in (right, OPPOSITE[right])
    rows, columns = (column_letter, row_letter) if transpose else (row_letter, column_letter)
    flip_columns = columns == OPPOSITE[right]
    flip_rows = rows == OPPOSITE[up]
    return Placement(transpose, flip_rows, flip_columns,
                     OPPOSITE[columns] if flip_columns else columns, OPPOSITE[rows] if flip_rows else rows)


def draw_markers(axis, place: Placement, *, colour: str = "yellow") -> None:
    """The four edge letters inside a matplotlib axis (axes coordinates)."""
    positions = {"left": (0.02, 0.5, "left", "center"), "right": (0.98, 0.5, "right", "center"),
                 "top": (0.5, 0.98, "center", "top"), "bottom": (0.5, 0.02, "center", "bottom")}
    for edge, letter in place.markers().items():
        x, y, ha, va = positions[edge]
        axis.text(x, y, letter, transform=axis.transAxes, ha=ha, va=va, color=colour, fontsize=10,
                  fontweight="bold")
