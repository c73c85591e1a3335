"""Inputs that cannot lie: payload lengths, gzip streams, DICOM series choice, channel names."""

from __future__ import annotations

import gzip

import pytest
from voxcause.errors import InputError
from voxcause.io.channel_names import canonical, check_channel_order, named_channels
from voxcause.io.verify import choose_series, gzip_length

CARD = ("T1", "T1c", "T2", "FLAIR")


def test_gzip_members_are_read_to_their_end(tmp_path):
    path = tmp_path / "two.gz"
    path.write_bytes(gzip.compress(b"a" * 5_000_000) + gzip.compress(b"bcd"))
    assert gzip_length(path) == 5_000_003
    damaged = bytearray(path.read_bytes())
    damaged[-20] ^= 0xFF  # inside the second member's deflate data or CRC
    path.write_bytes(bytes(damaged))
    with pytest.raises(InputError, match="damaged|end marker"):
        gzip_length(path)
    path.write_bytes(gzip.compress(b"a" * 1000)[:-8])  # no CRC and length trailer
    with pytest.raises(InputError, match="ends before its end marker"):
        gzip_length(path)


@pytest.mark.parametrize(("name", "expected"), [
    ("case_T1.nii.gz", {"T1"}), ("case-t1ce.nii.gz", {"T1c"}), ("case_T1_c.nii", {"T1c"}),
    ("BraTS-GLI-00001-000-t2f.nii.gz", {"FLAIR"}), ("sub-01_T2w.nii.gz", {"T2"}), ("Flair.nrrd", {"FLAIR"}),
    ("patient7_ct.mha", {"CT"}), ("peter.nii.gz", set()), ("case_001.nii.gz", set()), ("adc_dwi.nii", {"ADC", "DWI"}),
])
def test_file_names_name_channels_case_and_separator_insensitively(name, expected):
    assert named_channels(name) == expected


def test_only_names_of_another_slot_are_refused():
    check_channel_order(["a_T1.nii", "a_T1c.nii", "a_T2.nii", "a_FLAIR.nii"], CARD)
    check_channel_order(["one.nii", "two.nii", "three.nii", "four.nii"], CARD)  # names that name nothing
    check_channel_order(["a_T1.nii", "a_T1c.nii", "a_T2.nii", "a_DWI.nii"], CARD)  # DWI is no other slot's
    with pytest.raises(InputError, match=r"a_T2\.nii is passed as channel 2 \(T1c\) but its name says T2"):
        check_channel_order(["a_T1.nii", "a_T2.nii", "a_T1c.nii", "a_FLAIR.nii"], CARD)
    assert canonical("t1-Gd") == "T1c" and canonical("glioma") is None


def test_a_folder_with_several_series_needs_a_choice(tmp_path):
    assert choose_series(tmp_path, ["1.2.3"], None) == "1.2.3"
    assert choose_series(tmp_path, ["1.2.3", "1.2.4"], "1.2.4") == "1.2.4"
    with pytest.raises(InputError, match="holds 2 DICOM series \\(1.2.3, 1.2.4\\) — pick one with --series UID"):
        choose_series(tmp_path, ["1.2.3", "1.2.4"], None)
