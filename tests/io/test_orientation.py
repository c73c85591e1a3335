"""Figures in radiological convention: the patient's right on the viewer's left, whatever the file's orientation."""

from __future__ import annotations

import numpy as np
import pytest
from voxcause.orientation import axis_letters, placement

LPS_IDENTITY = (1, 0, 0, 0, 1, 0, 0, 0, 1)  # +x left, +y posterior, +z superior (ITK's own frame)
RAS_NIFTI = (-1, 0, 0, 0, -1, 0, 0, 0, 1)  # a NIfTI stored RAS: +x right, +y anterior


@pytest.mark.parametrize(("direction", "letters"), [(LPS_IDENTITY, ["S", "P", "L"]), (RAS_NIFTI, ["S", "A", "R"]),
                                                    (None, ["S", "P", "L"])])
def test_axis_letters_follow_the_direction_cosines(direction, letters):
    assert axis_letters(direction, 3) == letters


@pytest.mark.parametrize("direction", [LPS_IDENTITY, RAS_NIFTI])
def test_a_right_sided_lesion_is_drawn_on_the_viewers_left(direction):
    letters = axis_letters(direction, 3)
    volume = np.zeros((4, 10, 12))
    right_x = 1 if letters[2] == "L" else 10  # the patient's right end of the x axis
    anterior_y = 1 if letters[1] == "P" else 8
    volume[2, anterior_y, right_x] = 1.0
    for view, index, rows, columns in (("axial", (2, slice(None), slice(None)), 1, 2),
                                       ("coronal", (slice(None), anterior_y, slice(None)), 0, 2)):
        place = placement(view, letters[rows], letters[columns])
        shown = place.apply(volume[index])
        row, column = np.argwhere(shown)[0]
        assert column < shown.shape[1] / 2, view  # right lesion: left half of the picture
        assert place.markers()["left"] == "R" and place.markers()["right"] == "L"
        if view == "axial":  # anterior up (origin lower: high rows are the top)
            assert row > shown.shape[0] / 2 and place.markers()["top"] == "A"


def test_sagittal_shows_anterior_left_superior_up_and_a_picture_stays_upright():
    place = placement("sagittal", "S", "P")
    assert place.markers() == {"left": "A", "right": "P", "top": "S", "bottom": "I"}
    assert not place.transpose and not place.flip_rows and not place.flip_columns
    picture = np.arange(6).reshape(2, 3)  # row 0 is the picture's top
    upright = placement("image", *axis_letters(None, 2)).apply(picture)
    assert (upright[-1] == picture[0]).all()  # drawn with origin="lower": the last row is at the top


def test_swapped_axes_are_transposed_and_the_aspect_follows():
    place = placement("axial", "L", "P")  # rows run left, columns posterior: a transposed acquisition
    assert place.transpose and place.markers()["right"] == "L" and place.markers()["top"] == "A"
    assert place.aspect(row_spacing=2.0, column_spacing=1.0) == 0.5
