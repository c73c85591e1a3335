"""Segment names of a label saved to the PACS (lib/dicomweb.segment_names), in each form a client sends them."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from ml_server import app_module

pytestmark = pytest.mark.monailabel


@pytest.fixture(scope="module")
def segment_names():
    return app_module("lib.dicomweb").segment_names


def test_names_from_an_infer_reply(segment_names, tmp_path):
    names = segment_names(str(tmp_path / "x.nii.gz"), {"label_names": {"tumour": 1, "rim": 2},
                                                       "label_colors": {"tumour": [0.0, 1.0, 0.0]}}, [1, 2])
    assert names[1] == ("tumour", [0, 255, 0])
    assert names[2][0] == "rim" and len(names[2][1]) == 3


def test_names_from_the_slicer_clients_label_info(segment_names, tmp_path):
    """MONAI Label's Slicer plugin sends {"label_info": [{"name": ..., "idx": i + 1}]} (skipped segments leave gaps)."""
    info = {"label_info": [{"name": "tumour", "idx": 1}, {"name": "oedema", "idx": 3}]}
    names = segment_names(str(tmp_path / "x.nii.gz"), info, [1, 3, 4])
    assert [names[v][0] for v in (1, 3, 4)] == ["tumour", "oedema", "label 4"]


def test_names_from_a_seg_nrrd_header(segment_names, tmp_path):
    from voxcause.io import write_segmentation
    from voxcause.io.images import read_image

    reference = sitk.GetImageFromArray(np.zeros((8, 9, 10), np.float32))
    sitk.WriteImage(reference, str(tmp_path / "ref.nii.gz"))
    first, second = np.zeros((8, 9, 10), bool), np.zeros((8, 9, 10), bool)
    first[2:4, 2:4, 2:4], second[5:7, 5:7, 5:7] = True, True
    path = tmp_path / "label.seg.nrrd"
    write_segmentation(path, [("rex level 5 of 5", first, (1.0, 1.0, 0.0)),
                              ("rex sufficient explanation", second, (0.0, 1.0, 1.0))],
                       read_image(tmp_path / "ref.nii.gz"))
    values = sorted(int(v) for v in np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))) if v)
    names = segment_names(str(path), {}, values)
    assert [names[v][0] for v in values] == ["rex level 5 of 5", "rex sufficient explanation"]
    assert names[values[0]][1] == [255, 255, 0]
