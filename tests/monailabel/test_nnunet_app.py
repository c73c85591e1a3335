"""An nnU-Net v2 results folder as the app's segmenter, explained end to end over HTTP (issue 15).

A MONAI Label server of its own (127.0.0.1, free port) serves the nnU-Net test model of tests/models/nnunet
(fold 0 only: ``--conf segmenter <results folder>/fold_0``, ``--conf classifier none``) over a studies folder of
two generated sphere cases (tests/models/nnunet_spheres.py: the bright sphere is the known cause), written at a
spacing, origin and direction the model was not trained at (flipped x axis). Checked: every label comes back in
the image's exact geometry, the segmentation is the sphere, the most responsible voxels and the sufficient
explanation lie on it, the reply names the model as nnU-Net with test-time mirroring off, and a layer method is
refused in one line while the server keeps serving. Every task runs with its defaults (rex: the app's 10
iterations). Needs nnunetv2 in the MONAI Label venv (.ci/setup_monailabel.sh installs it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from ml_server import HAVE_MONAILABEL, REPO, Server, assert_certificate, core_segments, launch, read_label, stop

sys.path.insert(0, str(REPO / "tests" / "models"))

from nnunet_spheres import dice, make_case  # noqa: E402

pytestmark = pytest.mark.monailabel
if HAVE_MONAILABEL:  # elsewhere conftest.py skips the folder with its own reason
    pytest.importorskip("nnunetv2", reason="nnU-Net v2 is not installed in this venv — run .ci/setup_monailabel.sh")

MODEL = REPO / "tests" / "models" / "nnunet" / "Dataset500_Spheres" / "nnUNetTrainer_Tiny__nnUNetPlans_tiny__3d_fullres"
#: (image id, seed); the first is explained, both are segmented
CASES = (("sphere_21", 21), ("sphere_22", 22))
CASE = CASES[0][0]
#: training was 2.0 x 1.5 x 1.5 mm with the identity direction
SPACING, SHAPE, ORIGIN = (2.2, 1.6, 1.6), (24, 30, 30), (10.0, -5.0, 3.0)
DIRECTION = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
ON_SPHERE = 0.8  # share of a drawn set that must lie within 2 voxels of the sphere

TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def sphere_studies(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """``studies/<id>.nii.gz`` per case, the ground-truth spheres outside the studies folder."""
    root = tmp_path_factory.mktemp("nnunet-app")
    studies, truth = root / "studies", root / "truth"
    studies.mkdir()
    truth.mkdir()
    labels = {}
    for image_id, seed in CASES:
        image, label = make_case(seed, spacing=SPACING, shape=SHAPE, origin=ORIGIN, direction=DIRECTION)
        sitk.WriteImage(image, str(studies / f"{image_id}.nii.gz"))
        labels[image_id] = truth / f"{image_id}.nii.gz"
        sitk.WriteImage(label, str(labels[image_id]))
    return studies, labels


@pytest.fixture(scope="module")
def nnunet_server(sphere_studies, tmp_path_factory):
    studies, _ = sphere_studies
    work = tmp_path_factory.mktemp("nnunet-server")
    started = time.perf_counter()
    running = launch(str(studies), work, {"models": "all", "segmenter": str(MODEL / "fold_0"), "classifier": "none"},
                     files_at=studies)
    TIMES["server start"] = time.perf_counter() - started
    try:
        yield running
    finally:
        stop(running.process)
        print("\nnnU-Net app timings: " + ", ".join(f"{key} {value:.1f} s" for key, value in TIMES.items()))


def _image(server: Server, image_id: str) -> sitk.Image:
    return sitk.ReadImage(str(server.studies / f"{image_id}.nii.gz"))


def _sphere(sphere_studies, image_id: str) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(sphere_studies[1][image_id]))) > 0


def _near(sphere: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(sphere, iterations=2)


def assert_same_geometry(result: sitk.Image, image: sitk.Image) -> None:
    assert result.GetSize() == image.GetSize()
    np.testing.assert_allclose(result.GetSpacing(), image.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(result.GetOrigin(), image.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(result.GetDirection(), image.GetDirection(), atol=1e-6)


def assert_nnunet_named(params: dict) -> None:
    """The reply says which model ran: an nnU-Net v2 model, fold 0, test-time mirroring off."""
    model = params["models"]["segmenter"]
    assert model["format"] == "nnU-Net v2" and model["mirroring"] is False, model
    assert model["folds"] == ["0"] and model["configuration"] == "3d_fullres", model
    assert any("mirroring is OFF" in warning for warning in params["warnings"]), params["warnings"]


def _infer(server: Server, task: str, image_id: str = CASE, params: dict | None = None):
    started = time.perf_counter()
    reply = server.infer(task, image_id, params=params)
    TIMES[f"{task}{' ' + params['method'] if params and 'method' in params else ''} {image_id}"] = (
        time.perf_counter() - started)
    assert reply.status == 200, f"{reply.status} {reply.text}\n{server.log_tail()}"
    return reply


def test_info_offers_the_nnunet_segmenter_and_no_layer_only_task(nnunet_server):
    info = nnunet_server.get("/info/").json()
    tasks = info["models"]
    assert tasks["segmentation"]["labels"] == {"sphere": 1}
    assert "Dataset500_Spheres" in tasks["segmentation"]["description"]
    assert {"segmentation", "explain_rex", "explain_saliency", "counterfactual"} <= set(tasks)
    # the fused map needs Seg-Grad-CAM, which cannot see inside an nnU-Net model: not offered
    assert "explain_dea" not in tasks
    # --conf classifier none: the segmenter is the only model to explain
    assert tasks["explain_rex"]["config"]["explained_model"] == ["segmenter"]


@pytest.mark.parametrize("image_id", [case for case, _ in CASES])
def test_segmentation_is_the_sphere_in_the_image_geometry(nnunet_server, sphere_studies, image_id, tmp_path):
    reply = _infer(nnunet_server, "segmentation", image_id)
    label = read_label(reply.label, ".seg.nrrd", tmp_path)
    assert_same_geometry(label, _image(nnunet_server, image_id))
    assert reply.params["label_names"] == {"sphere": 1}
    score = dice(sitk.GetArrayFromImage(label) == 1, _sphere(sphere_studies, image_id))
    print(f"\n{image_id}: Dice {score:.3f}")
    assert score >= 0.8
    assert_nnunet_named(reply.params)


@pytest.fixture(scope="module")
def rex(nnunet_server):
    return _infer(nnunet_server, "explain_rex")


def test_rex_puts_the_top_level_and_the_sufficient_explanation_on_the_sphere(nnunet_server, sphere_studies, rex,
                                                                            tmp_path):
    from voxcause.levels import responsibility_levels

    image = _image(nnunet_server, CASE)
    label = read_label(rex.label, ".seg.nrrd", tmp_path)
    assert_same_geometry(label, image)
    values, names = sitk.GetArrayFromImage(label), rex.params["label_names"]
    near = _near(_sphere(sphere_studies, CASE))
    # the float map kept beside the label: same geometry; the labelmap's levels are its bands, the sufficient
    # explanation (whole in the kept explanation.seg.nrrd) drawn where no level lies
    kept = sitk.ReadImage(rex.params["map_file"])
    assert_same_geometry(kept, image)
    responsibility = np.clip(sitk.GetArrayFromImage(kept), 0, None)
    levels = rex.params["options"]["levels"]
    bands = responsibility_levels(responsibility, levels)
    for name, value in names.items():
        if " level " in name:
            assert np.array_equal(values == value, bands == int(name.split()[2])), name
    sufficient = core_segments(Path(rex.params["explanation_file"]))["sufficient explanation"]
    assert np.array_equal(values == names.get("rex sufficient explanation (outside the levels)", -1), sufficient & (bands == 0))
    top = bands == levels
    shares = {"sufficient explanation": float(near[sufficient].mean()), f"level {levels} of {levels}":
              float(near[top].mean()), "responsibility": float(responsibility[near].sum() / responsibility.sum())}
    peak = np.unravel_index(np.argmax(responsibility), responsibility.shape)
    print(f"\nexplain_rex: sufficient explanation {int(sufficient.sum())} voxels, top level {int(top.sum())} voxels; "
          "share within 2 voxels of the sphere: " + ", ".join(f"{key} {value:.3f}" for key, value in shares.items())
          + f"; {rex.params['forward_passes']} passes, {rex.params['seconds']:.1f} s")
    assert sufficient.any() and rex.params["sufficient"]["voxels"] > 0
    assert top.any() and near[peak]
    assert min(shares.values()) >= ON_SPHERE, shares
    assert rex.params["target"]["label"] == "sphere"
    assert_nnunet_named(rex.params)
    certificate = assert_certificate(rex.params)
    print(f"explain_rex certificate: {certificate['verdict']} ({certificate['reason']})")


def test_occlusion_peaks_on_the_sphere(nnunet_server, sphere_studies):
    reply = _infer(nnunet_server, "explain_saliency", params={"method": "occlusion"})
    kept = sitk.ReadImage(reply.params["map_file"])
    assert_same_geometry(kept, _image(nnunet_server, CASE))
    values = sitk.GetArrayFromImage(kept)
    near = _near(_sphere(sphere_studies, CASE))
    assert near[np.unravel_index(np.argmax(values), values.shape)]
    print(f"\nocclusion: {reply.params['forward_passes']} passes, {reply.params['seconds']:.1f} s")
    assert_nnunet_named(reply.params)


def test_counterfactual_removing_the_sphere_drops_the_score(nnunet_server):
    reply = _infer(nnunet_server, "counterfactual")
    print(f"\ncounterfactual: p_orig {reply.params['p_orig']:.3f}, delta_drop {reply.params['delta_drop']:.3f}")
    assert reply.params["p_orig"] > 0.8 and reply.params["delta_drop"] > 0.3
    assert reply.params["models"]["segmenter"]["format"] == "nnU-Net v2"


def test_layer_method_is_refused_in_one_line_and_the_server_keeps_serving(nnunet_server):
    reply = nnunet_server.infer("explain_saliency", CASE, params={"method": "gradcam"})
    assert reply.status == 422, reply.text
    detail = reply.params["detail"]
    assert isinstance(detail, str) and len(detail.splitlines()) == 1, detail
    assert "nnU-Net" in detail and "explain_rex" in detail and "method=occlusion" in detail, detail
    assert "--method" not in detail  # the app's names, not the command line's
    after = _infer(nnunet_server, "segmentation")
    assert after.params["label_names"] == {"sphere": 1}
