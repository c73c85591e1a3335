"""2D pictures (JPEG, PNG, TIFF, BMP) read as stored, fitted to the model's channels, explained as pictures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from voxcause.cli.main import main
from voxcause.io import read_image
from voxcause.testing import make_case

RNG = np.random.default_rng(0)
PIXELS = (RNG.random((20, 30, 3)) * 255).astype(np.uint8)
MODES = {  # file, Pillow mode written -> channels read
    "rgb.jpg": ("RGB", 3),
    "rgb.bmp": ("RGB", 3),
    "rgb.tif": ("RGB", 3),
    "rgba.png": ("RGBA", 3),  # alpha dropped
    "palette.png": ("P", 3),
    "grey.jpg": ("L", 1),
    "grey_alpha.png": ("LA", 1),  # SimpleITK cannot read this one at all
    "grey16.tif": ("I;16", 1),
}


@pytest.mark.parametrize("name", list(MODES))
def test_pictures_read_as_stored(name, tmp_path):
    mode, channels = MODES[name]
    path = tmp_path / name
    rgba = np.dstack([PIXELS, PIXELS[..., :1]])
    picture = Image.fromarray(rgba, "RGBA").convert(mode) if mode != "I;16" else Image.fromarray(
        PIXELS[..., 0].astype(np.uint16) * 200)
    picture.save(path)
    volume = read_image(path)
    assert volume.array.shape == (channels, 20, 30)
    assert volume.reference.GetSize() == (30, 20) and volume.spacing == (1.0, 1.0)
    if name in ("rgb.bmp", "rgb.tif", "rgba.png"):  # lossless: the stored values exactly
        np.testing.assert_array_equal(volume.array, np.moveaxis(PIXELS, -1, 0))


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pictures")
    grey = make_case("single", size=48, spatial_dims=2, channels=1, seed=0)
    colour = make_case("single", size=48, spatial_dims=2, channels=3, seed=0)
    pixels = (np.clip(grey.image[0], 0, 1) * 255).astype(np.uint8)
    files = {"grey": folder / "case.jpg", "colour": folder / "case.png", "one_channel": folder / "grey.ts",
             "three_channels": folder / "rgb.ts", "cause": folder / "cause.npy"}
    Image.fromarray(pixels).save(files["grey"], quality=95)
    Image.fromarray(pixels).convert("RGB").save(files["colour"])
    torch.jit.script(grey.model).save(str(files["one_channel"]))
    torch.jit.script(colour.model).save(str(files["three_channels"]))
    np.save(files["cause"], ndimage.binary_dilation(grey.causes[0], iterations=2))
    for name, model, channels in (("card1", "grey.ts", 1), ("card3", "rgb.ts", 3)):
        files[name] = folder / f"{name}.json"
        files[name].write_text(json.dumps({"model": model, "channels": channels}))
    return files


FITS = {  # picture, model, extra flags -> note expected in summary.json (None: no fitting)
    "colour picture, 1-channel card": ("colour", "card1", [], "converted to grey"),
    "colour picture, --grayscale, bare model": ("colour", "one_channel", ["--grayscale"], None),
    "grey picture, 3-channel card": ("grey", "card3", [], "repeated into the model's 3 channels"),
    "colour picture, 3-channel model": ("colour", "three_channels", [], None),
    "grey picture, bare 1-channel model": ("grey", "one_channel", [], None),
}


@pytest.mark.parametrize("name", list(FITS))
def test_pictures_fit_the_model_and_come_back_as_pictures(name, pictures, tmp_path):
    picture, model, flags, note = FITS[name]
    out = tmp_path / "out"
    code = main(["explain", str(pictures[picture]), "--model", str(pictures[model]), "--out", str(out),
                 "--progress", "none", "--iterations", "6", *flags])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    notes = summary["stats"].get("model_notes", [])
    assert (note is None and not notes) or any(note in line for line in notes), notes
    assert summary["volumes"]["map_png"] == "map.png" and summary["volumes"]["explanation_png"] == "explanation.png"
    overlay = np.asarray(Image.open(out / "map.png"))
    assert overlay.shape == (48, 48, 3)  # the picture's own pixels, row for row
    plain = np.asarray(Image.open(pictures["colour"]).convert("RGB")).astype(int)
    covered = np.abs(overlay.astype(int) - plain).sum(-1) > 30  # where the heat is drawn
    cause = np.load(pictures["cause"])
    assert covered[cause].mean() > 0.5 and covered[cause].mean() > 3 * covered[~cause].mean()
    assert summary["certificate"]["verdict"] == "pass"


def test_grayscale_refuses_a_four_channel_image(tmp_path, capsys):
    path = tmp_path / "four.nrrd"
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 8, 4), np.float32), isVector=True), str(path))
    code = main(["explain", str(path), "--model", "none.ts", "--grayscale", "--out", str(tmp_path / "o")])
    assert code == 2 and "1- or 3-channel" in capsys.readouterr().err
