"""Outputs keep the input's exact geometry; every model format gives the same map."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio
import torch
from scipy import ndimage
from voxcause import explain, read_image
from voxcause.cli.main import main
from voxcause.io.atomic import MANIFEST
from voxcause.testing import KnownCauseNet, make_case, write_nifti

ROTATED = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


def geometry(image: sitk.Image) -> tuple:
    return (
        image.GetSize(),
        np.round(image.GetSpacing(), 5).tolist(),
        np.round(image.GetOrigin(), 4).tolist(),
        np.round(image.GetDirection(), 5).tolist(),
    )


@pytest.fixture(scope="module")
def scripted_single(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("single")
    case = make_case("single", size=24)
    model = folder / "model.ts"
    torch.jit.script(case.model).save(str(model))
    image = write_nifti(
        case.image[0], folder / "image.nii.gz", spacing=(0.9, 1.1, 3.0), direction=ROTATED, origin=(-12.0, 30.5, 7.0)
    )
    return Path(image), model


def test_cli_outputs_share_the_input_geometry_and_contract(scripted_single, tmp_path):
    image, model = scripted_single
    out = tmp_path / "out"
    assert (
        main(
            ["explain", str(image), "--model", str(model), "--iterations", "4", "--out", str(out), "--progress", "none"]
        )
        == 0
    )
    expected = ["explanation.seg.nrrd", "map.nii.gz", "overview.png", "summary.json"]
    assert sorted(p.name for p in out.iterdir() if p.name != MANIFEST) == expected
    source = sitk.ReadImage(str(image))
    assert geometry(sitk.ReadImage(str(out / "map.nii.gz"))) == geometry(source)
    segmentation = sitk.ReadImage(str(out / "explanation.seg.nrrd"))
    assert geometry(segmentation)[1:] == geometry(source)[1:]
    assert segmentation.GetSize()[:3] == source.GetSize()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for key in ("method", "target", "score", "forward_passes", "seconds", "device", "version", "sufficient"):
        assert key in summary
    assert summary["target"]["index"] == 1 and summary["forward_passes"] > 50
    assert summary["device"] == ("cuda" if torch.cuda.is_available() else "cpu")  # --device auto, resolved
    segments = slicerio.read_segmentation(str(out / "explanation.seg.nrrd"))
    names = [s["name"] for s in segments["segments"]]
    assert "sufficient explanation" in names and "responsibility level 5" in names
    assert all(len(s["color"]) == 3 for s in segments["segments"])


def test_anisotropic_spacing_steers_the_cuts_to_the_long_physical_axes():
    from voxcause.causal.partition import Box, split_box

    rng = np.random.default_rng(0)
    box = Box((0, 0, 0), (20, 64, 64))

    def cut_axes(spacing):
        children = split_box(box, rng, spacing)
        return {axis for axis in range(3) if len({child.lo[axis] for child in children}) > 1}

    thick = sum(0 in cut_axes((5.0, 1.0, 1.0)) for _ in range(300))
    thin = sum(0 in cut_axes((0.2, 1.0, 1.0)) for _ in range(300))
    assert thick > 1.5 * thin
    for children in (split_box(box, rng, (1.0, 1.0, 1.0)) for _ in range(50)):
        assert len(children) == 4 and all(child.volume > 0 for child in children)
        assert sum(child.volume for child in children) == box.volume


def test_dicom_series_round_trip(tmp_path):
    case = make_case("single", size=24)
    volume = (case.image[0] * 1000).astype(np.int16)
    folder = tmp_path / "dicom"
    folder.mkdir()
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((0.8, 0.8, 2.0))
    image.SetOrigin((10.0, -20.0, 5.0))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series = "1.2.826.0.1.3680043.2.1125.1"
    for index in range(image.GetDepth()):
        slice_image = image[:, :, index]
        slice_image.SetMetaData("0020|000e", series)
        slice_image.SetMetaData("0020|0013", str(index + 1))
        slice_image.SetMetaData("0020|0032", "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, index)))))
        slice_image.SetMetaData("0020|0037", "1\\0\\0\\0\\1\\0")
        slice_image.SetMetaData("0008|0060", "MR")
        writer.SetFileName(str(folder / f"slice{index:03d}.dcm"))
        writer.Execute(slice_image)
    read = read_image(folder)
    assert read.array.shape == (1, 24, 24, 24)
    np.testing.assert_allclose(read.spacing, (2.0, 0.8, 0.8), atol=1e-3)
    np.testing.assert_allclose(read.reference.GetOrigin(), (10.0, -20.0, 5.0), atol=1e-3)
    np.testing.assert_array_equal(read.array[0], volume)


def _formats(tmp_path: Path) -> dict[str, Path]:
    """The same known-cause network as TorchScript, torch.export, ONNX, a card and a MONAI bundle."""
    network = KnownCauseNet("single", size=24).eval()
    example = torch.zeros(1, 1, 24, 24, 24)
    paths = {"torchscript": tmp_path / "m.ts", "export": tmp_path / "m.pt2", "onnx": tmp_path / "m.onnx"}
    torch.jit.script(network).save(str(paths["torchscript"]))
    torch.export.save(torch.export.export(network, (example,)), str(paths["export"]))
    torch.onnx.export(
        network,
        (example,),
        str(paths["onnx"]),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        dynamo=False,
    )
    torch.save(network.state_dict(), tmp_path / "weights.pt")
    spec = {"_target_": "voxcause.testing.KnownCauseNet", "kind": "single", "size": 24}
    card = {
        "name": "spot",
        "network": spec,
        "weights": "weights.pt",
        "task": "classification",
        "labels": ["absent", "present"],
        "channels": 1,
    }
    paths["card"] = tmp_path / "card.json"
    paths["card"].write_text(json.dumps(card))
    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    torch.save(network.state_dict(), bundle / "models" / "model.pt")
    (bundle / "configs" / "inference.json").write_text(json.dumps({"network_def": spec}))
    (bundle / "configs" / "metadata.json").write_text(
        json.dumps(
            {
                "name": "spot",
                "network_data_format": {
                    "inputs": {"image": {"num_channels": 1, "spatial_shape": [24, 24, 24]}},
                    "outputs": {"pred": {"shape": [2], "channel_def": {"0": "absent", "1": "present"}}},
                },
            }
        )
    )
    paths["bundle"] = bundle
    return paths


def test_every_model_format_gives_the_same_map(tmp_path):
    pytest.importorskip("onnxruntime")
    case = make_case("single", size=24)
    image = write_nifti(case.image[0], tmp_path / "image.nii.gz")
    maps = {name: explain(image, model=path, seed=3, iterations=4).map for name, path in _formats(tmp_path).items()}
    reference = maps.pop("torchscript")
    onnx = maps.pop("onnx")
    for name, values in maps.items():  # the torch formats run the same kernels: identical maps
        np.testing.assert_allclose(values, reference, rtol=1e-5, atol=1e-5, err_msg=name)
    # onnxruntime's convolutions round differently; a mutant on the decision boundary may flip, so the
    # ONNX map matches closely rather than bit for bit.
    cause = ndimage.binary_dilation(case.causes[0], iterations=2)
    for values in (onnx, reference):
        assert np.clip(values, 0, None)[cause].sum() > 0.6 * np.clip(values, 0, None).sum()
        assert cause.flat[int(np.argmax(values))]


def test_multi_output_model_is_explained_per_head(tmp_path):
    class TwoHeads(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = KnownCauseNet("single", size=24)

        def forward(self, x):
            logits = self.body(x)
            return {"class_logits": logits, "flipped": logits.flip(1)}

    case = make_case("single", size=24)
    image = write_nifti(case.image[0], tmp_path / "image.nii.gz")
    path = tmp_path / "two.pt2"
    torch.export.save(torch.export.export(TwoHeads().eval(), (torch.zeros(1, 1, 24, 24, 24),)), str(path))
    first = explain(image, model=path, iterations=2, model_options={"output": "class_logits"})
    second = explain(image, model=path, iterations=2, model_options={"output": "flipped"})
    assert first.prediction["index"] == 1 and second.prediction["index"] == 0
    assert first.model["output"] == "class_logits"
