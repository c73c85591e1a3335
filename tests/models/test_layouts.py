"""Models in every layout and activation a user brings: channels-last (Keras-style NHWC/NDHWC) and channels-first,
logits and softmax outputs, TorchScript, torch.export and ONNX, with and without a card.

Each model is a known-cause network (`make_case`) wrapped the way exporters leave it: a transpose in front
(channels-last input), optionally a softmax behind, per-voxel outputs transposed back to channels-last. The
explanation must give the model's own probability of the explained class (not a second softmax of it), find
the cause, and come with a certificate; a model that cannot run says why in one line with exit code 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn
from voxcause import explain
from voxcause.cli.main import main
from voxcause.models import load_model
from voxcause.testing import make_case, write_nifti
from voxcause.testing.wrapping import volume_of

ort = pytest.importorskip("onnxruntime")


class Exported(nn.Module):
    """A channels-first network as an exporter leaves it: channels-last in/out and/or a softmax on top."""

    def __init__(self, network: nn.Module, *, channels_last: bool, softmax: bool) -> None:
        super().__init__()
        self.network = network
        self.channels_last = channels_last
        self.softmax = softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rank = x.dim()
        if self.channels_last:  # explicit permutations: ONNX's Transpose takes no negative axes
            x = x.permute([0, rank - 1, *range(1, rank - 1)])
        y = self.network(x)
        if self.softmax:
            y = torch.softmax(y, dim=1)
        if self.channels_last and y.dim() == rank:
            y = y.permute([0, *range(2, rank), 1])
        return y


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # make_case kind: single (classifier) or segmenter
    spatial_dims: int
    channels: int
    fmt: str  # onnx | torchscript | export
    channels_last: bool
    softmax: bool
    card: dict | None = None  # fields of a card naming the file
    fixed_grid: bool = False  # ONNX declares its spatial size; the image is twice as large


SIZE = {2: 32, 3: 20}
CASES = [
    Case("onnx 2D NHWC softmax, bare", "single", 2, 3, "onnx", True, True),
    Case("onnx 2D NHWC softmax, card", "single", 2, 3, "onnx", True, True, card={"layout": "NHWC", "channels": 3}),
    Case("onnx 3D NDHWC softmax, bare", "single", 3, 1, "onnx", True, True),
    Case("onnx 3D NDHWC softmax, card", "single", 3, 1, "onnx", True, True, card={"layout": "channels_last"}),
    Case("onnx 2D NCHW logits, bare", "single", 2, 1, "onnx", False, False),
    Case("onnx 2D NHWC logits, bare", "single", 2, 3, "onnx", True, False),
    Case("onnx 2D NHWC softmax, fixed grid", "single", 2, 3, "onnx", True, True, fixed_grid=True),
    Case("onnx 3D NDHWC softmax segmenter", "segmenter", 3, 1, "onnx", True, True),
    Case("torchscript 2D NHWC softmax, bare", "single", 2, 3, "torchscript", True, True),
    Case("torchscript 3D NDHWC softmax segmenter", "segmenter", 3, 1, "torchscript", True, True),
    Case("torchscript 3D NCDHW logits", "single", 3, 1, "torchscript", False, False),
    Case("torchscript 3D NDHWC, card", "single", 3, 1, "torchscript", True, True, card={"layout": "NDHWC"}),
    Case("torch.export 2D NHWC softmax", "single", 2, 3, "export", True, True),
]


def _save(case: Case, folder: Path) -> tuple[Path, np.ndarray, list[np.ndarray], nn.Module]:
    """Write the case's model; return the model path, the image (C, *S), the cause masks and the module."""
    known = make_case(case.kind, size=SIZE[case.spatial_dims], spatial_dims=case.spatial_dims,
                      channels=case.channels, seed=0)
    module = Exported(known.model, channels_last=case.channels_last, softmax=case.softmax).eval()
    size = SIZE[case.spatial_dims]
    shape = (1, *(size,) * case.spatial_dims, case.channels) if case.channels_last else (
        1, case.channels, *(size,) * case.spatial_dims)
    example = torch.zeros(shape)
    path = folder / {"onnx": "model.onnx", "torchscript": "model.ts", "export": "model.pt2"}[case.fmt]
    if case.fmt == "onnx":
        free = {0: "batch"} if case.fixed_grid else {0: "batch", **{a: f"s{a}" for a in range(1, len(shape))
                                                                     if not (case.channels_last and a == len(shape) - 1)
                                                                     and not (not case.channels_last and a == 1)}}
        torch.onnx.export(module, (example,), str(path), input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": free, "output": {0: "batch"}}, dynamo=False)
    elif case.fmt == "torchscript":
        torch.jit.trace(module, example).save(str(path))
    else:
        torch.export.save(torch.export.export(module, (example,)), str(path))
    if case.card is not None:
        card = folder / "card.json"
        card.write_text(json.dumps({"model": path.name, **case.card}))
        path = card
    image = known.image
    causes = known.causes
    if case.fixed_grid:  # the image is twice the model's grid: the file's signature must bring it down
        image = np.stack([ndimage.zoom(c, 2, order=1) for c in image])
        causes = [ndimage.zoom(c.astype(np.uint8), 2, order=0) > 0 for c in causes]
    return path, image, causes, module


def _own_probability(module: nn.Module, image: np.ndarray, case: Case) -> np.ndarray:
    """What the model itself says, with voxcause's default activation only where the model has none."""
    x = torch.from_numpy(image)[None]
    if case.fixed_grid:
        x = torch.nn.functional.interpolate(x, size=(SIZE[case.spatial_dims],) * case.spatial_dims,
                                            mode="bilinear", align_corners=False)
    if case.channels_last:
        x = x.movedim(1, -1)
    with torch.no_grad():
        y = module(x)
    if case.channels_last and y.dim() == x.dim():
        y = y.movedim(-1, 1)
    return (y if case.softmax else torch.softmax(y, dim=1)).numpy()[0]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_model_layouts_explain_with_the_models_own_scores(case: Case, tmp_path):
    path, image, causes, module = _save(case, tmp_path)
    result = explain(volume_of(image), model=path, seed=0, iterations=6)
    own = _own_probability(module, image, case)
    notes = result.stats.get("model_notes", [])
    if case.kind == "single":
        assert result.target["label"] == "1"
        assert result.score == pytest.approx(float(own[1]), abs=1e-4)
    else:  # the region explained is the predicted foreground; its mean probability is the model's own
        region = result.masks["target_region"]
        assert result.score == pytest.approx(float(own[1][region].mean()), abs=1e-3)
    assert any("already probabilities" in note for note in notes) == case.softmax
    assert any("channels-last" in note for note in notes) == (case.channels_last and case.fmt != "onnx"
                                                               and case.card is None)
    cause = ndimage.binary_dilation(causes[0], iterations=2)
    assert cause.flat[int(np.argmax(result.map))], "the map's peak lies outside the cause"
    assert result.certificate["verdict"] == "pass", result.certificate


def test_onnx_threads_follow_torch(tmp_path):
    """``--threads`` reaches onnxruntime: its session gets torch's thread count (set by set_threads)."""
    path, *_ = _save(CASES[0], tmp_path)
    torch.set_num_threads(1)
    model = load_model(path)
    assert model.raw.session.get_session_options().intra_op_num_threads == 1


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("layouts")
    path, image, _, _ = _save(CASES[0], folder)  # onnx 2D NHWC, 3 channels, 32x32
    rgb = folder / "rgb.nrrd"
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(np.moveaxis(image, 0, -1), isVector=True), str(rgb))
    files = {"model": path, "rgb": rgb, "gray": Path(write_nifti(image[0], folder / "gray.nii.gz", spacing=(1, 1))),
             "volume": folder / "vol.nrrd"}
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 32, 32, 3), np.float32), isVector=True), str(files["volume"]))
    wrong = folder / "wrong.json"
    wrong.write_text(json.dumps({"model": path.name, "layout": "channels_first", "channels": 3}))
    files["wrong_layout"] = wrong
    nonsense = folder / "nonsense.json"
    nonsense.write_text(json.dumps({"model": path.name, "layout": "HWCN"}))
    files["nonsense"] = nonsense
    return files


BAD = {
    "one channel for an RGB model": (["{gray}", "--model", "{model}"], "3 input channel"),
    "3D image for a 2D model": (["{volume}", "--model", "{model}"], "2D"),
    "card says channels-first": (["{rgb}", "--model", "{wrong_layout}"], "layout"),
    "forced wrong layout": (["{rgb}", "--model", "{model}", "--layout", "NCHW"], "NHWC"),
    "unknown layout name": (["{rgb}", "--model", "{nonsense}"], "unknown layout"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_layout_mistakes_are_one_line_exit_2(name, bad_files, tmp_path, capsys):
    arguments, expected = BAD[name]
    out = tmp_path / "out"
    code = main(["explain", *[a.format(**bad_files) for a in arguments], "--out", str(out), "--progress", "none",
                 "--iterations", "2"])
    error = capsys.readouterr().err.strip()
    assert code == 2, error
    assert len(error.splitlines()) == 1 and expected in error, error
    assert "internal error" not in error
    assert not out.exists()
