"""The voxcause MONAI Label app over HTTP: /info, every infer task, options, /batch/infer.

Runs against the real server of conftest.py (127.0.0.1, free port, sample patients as studies).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from ml_server import CASES, assert_certificate, core_segments, label_values, read_label, truth_path

pytestmark = pytest.mark.monailabel

CASE = CASES[0][0]  # a glioma
#: Cheap settings so every explain request stays within seconds on 2 CPU cores.
# Saliency by occlusion: Grad-CAM at the automatic layer does not lie on the sample segmenter's tumour (5% of it
# covered since its retraining; README methods table), so it cannot carry the "map on the tumour" check below.
FAST = {"explain_rex": {"iterations": 3}, "explain_saliency": {"method": "occlusion"}, "explain_dea": {},
        "counterfactual": {}}


def expected_tasks() -> set[str]:
    """The tasks the app must offer, given the methods the installed core registers."""
    from voxcause.explainers import METHODS

    tasks = {"segmentation", "counterfactual"}
    if "rex" in METHODS:
        tasks.add("explain_rex")
    if {"gradcam", "gradcampp", "scorecam", "occlusion"} & set(METHODS):
        tasks.add("explain_saliency")
    if "dea" in METHODS:
        tasks.add("explain_dea")
    return tasks


def geometry(image: sitk.Image) -> tuple:
    return (image.GetSize(), np.round(image.GetSpacing(), 5).tolist(), np.round(image.GetOrigin(), 4).tolist(),
            np.round(image.GetDirection(), 5).tolist())


def study_geometry(server, image_id: str = CASE) -> tuple:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(server.studies / f"{image_id}.nii.gz"))
    reader.ReadImageInformation()
    return (reader.GetSize()[:3], np.round(reader.GetSpacing()[:3], 5).tolist(),
            np.round(reader.GetOrigin()[:3], 4).tolist(), np.round(np.reshape(reader.GetDirection(), (-1,)), 5).tolist()
            if len(reader.GetSize()) == 3 else None)


def drawn_levels(labelmap: np.ndarray, names: dict[str, int]) -> dict[int, np.ndarray]:
    """``{level k: its voxels}`` of the reply's ``<prefix> level k of N`` segments (an empty level is not sent)."""
    return {int(name.split(" level ")[1].split()[0]): labelmap == value
            for name, value in names.items() if " level " in name}


def assert_core_bands(params: dict, labelmap: np.ndarray) -> dict[int, np.ndarray]:
    """The reply's levels are the core's display bands of the kept float map: voxel for voxel the
    ``responsibility level k`` segments of the kept explanation.seg.nrrd (same number of levels), and cut by value
    (the voxels of level >= k are exactly those whose map value reaches that level's lowest value)."""
    from voxcause.outputs import LEVELS

    names = params["label_names"]
    levels = drawn_levels(labelmap, names)
    assert levels, names
    values = sitk.GetArrayFromImage(sitk.ReadImage(params["map_file"])).astype(np.float64)
    assert values.shape == labelmap.shape
    for level, mask in levels.items():
        assert mask.any(), level
        reached = np.zeros_like(mask)
        for higher, other in levels.items():
            if higher >= level:
                reached |= other
        assert np.array_equal(reached, values >= values[mask].min()), f"level {level} is not a cut of the map"
    top = max(levels)
    assert levels[top][np.unravel_index(np.argmax(values), values.shape)], "the hottest level misses the map's peak"
    if params["options"]["levels"] == LEVELS:
        core = core_segments(Path(params["explanation_file"]))
        core_levels = {int(name.split()[-1]): mask for name, mask in core.items()  # trusted or UNTRUSTED greys
                       if "responsibility level " in name}
        assert set(core_levels) == set(levels), (sorted(core_levels), sorted(levels))
        for level, mask in levels.items():
            assert np.array_equal(mask, core_levels[level]), f"level {level} differs from explanation.seg.nrrd"
    return levels


def body_mask(image_id: str, server) -> np.ndarray:
    """The body (voxels unlike the background in any channel), the core's own `foreground_mask`."""
    import torch
    import voxcause
    from voxcause.ops import foreground_mask

    volume = voxcause.read_image(str(server.studies / f"{image_id}.nii.gz"))
    return foreground_mask(torch.as_tensor(np.asarray(volume.array))[None]).numpy()


@pytest.fixture(scope="module")
def segmentation(server, tmp_path_factory):
    reply = server.infer("segmentation", CASE)
    assert reply.status == 200, reply.text
    image = read_label(reply.label, ".seg.nrrd", tmp_path_factory.mktemp("seg"))
    return reply, image


def test_info_lists_every_task_with_labels_and_options(info):
    models = info["models"]
    assert expected_tasks() <= set(models), sorted(models)
    names: list[str] = []
    for name, task in models.items():
        assert task["type"] == "segmentation", name
        values = sorted(task["labels"].values())
        assert values == list(range(1, len(values) + 1)), (name, task["labels"])
        names += list(task["labels"])
        assert task["config"], name
    assert len(names) == len(set(names)), "label names must be unique across the app"
    assert {"levels", "iterations", "seed", "target", "explained_model"} <= set(models["explain_rex"]["config"])
    assert models["explain_rex"]["config"]["target"][0] == "auto"
    assert {"region", "removal", "target", "seed"} <= set(models["counterfactual"]["config"])


def test_segmentation_returns_label_in_input_geometry(server, segmentation):
    reply, image = segmentation
    assert reply.filename.endswith(".seg.nrrd")
    assert geometry(image)[:3] == tuple(study_geometry(server)[:3])
    names = reply.params["label_names"]
    assert label_values(image) == sorted(names.values())
    assert reply.params["forward_passes"] >= 1 and reply.params["seconds"] > 0
    assert {"pre", "infer", "post", "write", "total"} <= set(reply.params["latencies"])


def _tumour(segmentation) -> np.ndarray:
    return sitk.GetArrayFromImage(segmentation[1]) > 0


@pytest.mark.parametrize("task", ["explain_rex", "explain_saliency", "explain_dea", "counterfactual"])
def test_explain_task_returns_levels_numbers_and_kept_map(server, info, segmentation, task, tmp_path):
    if task not in info["models"]:
        pytest.skip(f"{task} is not offered: the core does not register its method")
    reply = server.infer(task, CASE, params=FAST[task])
    assert reply.status == 200, reply.text
    image = read_label(reply.label, ".seg.nrrd", tmp_path)
    assert geometry(image)[:3] == tuple(study_geometry(server)[:3])
    names = reply.params["label_names"]
    assert list(names.values()) == list(range(1, len(names) + 1))
    assert label_values(image) == sorted(names.values())
    all_labels = {label for model in info["models"].values() for label in model["labels"]}
    assert set(names) <= all_labels | {n for n in names if " level " in n}
    for key in ("score", "forward_passes", "seconds"):
        assert isinstance(reply.params[key], int | float), key
    assert reply.params["forward_passes"] >= 1
    if task == "counterfactual":
        for key in ("p_orig", "p_remove", "p_only", "delta_drop", "delta_focus"):
            assert isinstance(reply.params[key], float), key
        assert reply.params["delta_drop"] == pytest.approx(reply.params["p_orig"] - reply.params["p_remove"], abs=1e-6)
        kept = Path(reply.params["removed_file"])
    else:
        kept = Path(reply.params["map_file"])
        assert Path(reply.params["summary_file"]).exists()
        assert_certificate(reply.params)
        assert_core_bands(reply.params, sitk.GetArrayFromImage(image))
    assert kept.exists() and str(kept).startswith(str(server.studies / "voxcause" / CASE))
    kept_image = sitk.ReadImage(str(kept))
    assert kept_image.GetSize()[:3] == image.GetSize()
    # The explanation lies on the tumour the segmenter predicts.
    drawn = sitk.GetArrayFromImage(image) > 0
    tumour = _tumour(segmentation)
    assert drawn.any()
    overlap = (drawn & tumour).sum() / max(1, tumour.sum())
    assert overlap > 0.2, f"{task}: only {overlap:.2f} of the predicted tumour is covered"


def test_rex_sufficient_explanation_overlaps_the_predicted_tumour(server, segmentation, tmp_path):
    reply = server.infer("explain_rex", CASE, params={"iterations": 3})
    assert reply.status == 200, reply.text
    names = reply.params["label_names"]
    image = sitk.GetArrayFromImage(read_label(reply.label, ".seg.nrrd", tmp_path))
    # the whole explanation is in the kept explanation.seg.nrrd; the labelmap draws it where no level lies
    sufficient = core_segments(Path(reply.params["explanation_file"]))["sufficient explanation"]
    assert sufficient.any() and reply.params["sufficient"]["voxels"] > 0
    in_levels = np.isin(image, [value for name, value in names.items() if " level " in name])
    drawn = image == names.get("rex sufficient explanation (outside the levels)", -1)
    assert np.array_equal(drawn, sufficient & ~in_levels)
    tumour = _tumour(segmentation)
    inside = (sufficient & tumour).sum()
    # it lies on the tumour: far denser there than a random set of its size would be
    enrichment = (inside / sufficient.sum()) / (tumour.sum() / tumour.size)
    print(f"\nsufficient explanation: {int(sufficient.sum())} voxels (summary: {reply.params['sufficient']['voxels']}; "
          f"{int(drawn.sum())} drawn outside the levels), "
          f"{inside / tumour.sum():.2f} of the predicted tumour covered, {enrichment:.1f}x denser in the tumour "
          "than elsewhere")
    assert inside > 0 and enrichment > 5, (int(inside), enrichment)
    outside = "rex sufficient explanation (outside the levels)"
    if drawn.any():  # the part of the explanation no level covers is drawn, and said to be so
        assert "outside every drawn level" in reply.params["label_meaning"][outside]
    else:  # an explanation wholly inside the levels (the shuffled canvas keeps it on the tumour) has no such part
        assert outside not in names and outside not in reply.params["label_meaning"]
    # draw=explanation: the same explanation (same seed), whole, and the levels only around it
    whole = server.infer("explain_rex", CASE, params={"iterations": 3, "draw": "explanation"})
    assert whole.status == 200, whole.text
    names = whole.params["label_names"]
    image = sitk.GetArrayFromImage(read_label(whole.label, ".seg.nrrd", tmp_path))
    assert np.array_equal(image == names["rex sufficient explanation"], sufficient)
    levels = [name for name in names if " level " in name]
    assert levels and all(name.endswith("(outside the explanation)") for name in levels)
    assert not np.isin(image[sufficient], [names[name] for name in levels]).any()
    assert whole.params["label_meaning"]["rex sufficient explanation"].startswith("the whole explanation")
    print(f"draw=explanation: {int(sufficient.sum())} voxels drawn whole, {inside / sufficient.sum():.2f} of them in "
          "the predicted tumour")


def test_probability_task_draws_the_segmenters_kept_probability_in_bands(server, segmentation, tmp_path):
    """``probability``: the labelmap's bands are those of the float probability kept beside it, which is high on
    the predicted tumour; the single sample segmenter has no uncertainty unless flips are asked for."""
    reply = server.infer("probability", CASE)
    assert reply.status == 200, reply.text
    names = reply.params["label_names"]
    labelmap = sitk.GetArrayFromImage(read_label(reply.label, ".seg.nrrd", tmp_path))
    kept = sitk.ReadImage(reply.params["probability_file"])
    assert geometry(kept)[:3] == tuple(study_geometry(server)[:3])
    probability = sitk.GetArrayFromImage(kept)
    assert np.array_equal(labelmap == names["P(tumour) >= 0.9"], probability >= 0.9)
    assert np.array_equal(labelmap == names["P(tumour) 0.5-0.7"], (probability >= 0.5) & (probability < 0.7))
    tumour = _tumour(segmentation)
    assert probability[tumour].mean() > 0.7 and probability[~tumour].mean() < 0.05
    assert set(reply.params["label_meaning"]) == set(names)
    refused = server.infer("probability", CASE, params={"show": "uncertainty"})
    assert refused.status == 422 and "needs an ensemble" in refused.text, refused.text
    flipped = server.infer("probability", CASE, params={"show": "uncertainty", "flips": "on"})
    assert flipped.status == 200, flipped.text
    assert flipped.params["model_probability"]["members"] == 8 and Path(flipped.params["uncertainty_file"]).exists()
    print(f"\nprobability: {probability[tumour].mean():.3f} in the predicted tumour, {probability[~tumour].mean():.4f} "
          f"outside; flip uncertainty max {flipped.params['uncertainty_max']:.3f}")


@pytest.mark.parametrize("image_id", [case for case, _, _ in CASES])
def test_rex_reply_at_the_defaults_is_certified_and_shows_the_core_bands(server, image_id, tmp_path):
    """At the app's defaults (10 iterations, 5 levels): the certificate in the JSON, at least 3 non-empty levels
    that are the core's nested bands of the kept map, level 1 a small part of the body (before the rank bands,
    level 1 alone held 566,650 voxels of the held-out glioma and the sufficient explanation hid the rest)."""
    reply = server.infer("explain_rex", image_id)
    assert reply.status == 200, reply.text
    certificate = assert_certificate(reply.params)
    labelmap = sitk.GetArrayFromImage(read_label(reply.label, ".seg.nrrd", tmp_path))
    levels = assert_core_bands(reply.params, labelmap)
    body = body_mask(image_id, server)
    names = reply.params["label_names"]
    sufficient = labelmap == names.get("rex sufficient explanation (outside the levels)", -1)
    sizes = ", ".join(f"level {k} {int(mask.sum())}" for k, mask in sorted(levels.items()))
    print(f"\n{image_id} explain_rex (defaults): certificate {certificate['verdict']} ({certificate['reason']}); "
          f"{sizes}; sufficient explanation {reply.params['sufficient']['voxels']} voxels "
          f"({int(sufficient.sum())} outside the levels); body {int(body.sum())} voxels; "
          f"{reply.params['forward_passes']} passes, {reply.params['seconds']:.1f} s")
    assert len(levels) >= 3, sorted(levels)
    assert levels[min(levels)].sum() < 0.3 * body.sum(), "level 1 covers most of the body"


def test_options_change_the_result(server):
    three = server.infer("explain_rex", CASE, params={"iterations": 3, "levels": 3, "seed": 0})
    five = server.infer("explain_rex", CASE, params={"iterations": 3, "levels": 5, "seed": 0})
    other_seed = server.infer("explain_rex", CASE, params={"iterations": 3, "levels": 5, "seed": 7})
    for reply in (three, five, other_seed):
        assert reply.status == 200, reply.text
    levels_of = [[name for name in reply.params["label_names"] if " level " in name] for reply in (three, five)]
    assert levels_of[0] and all(name.endswith(" of 3") for name in levels_of[0]), levels_of[0]
    assert levels_of[1] and all(name.endswith(" of 5") for name in levels_of[1]), levels_of[1]
    assert three.params["options"]["levels"] == 3 and five.params["options"]["levels"] == 5
    assert three.label != five.label
    assert five.params["params"]["seed"] == 0 and other_seed.params["params"]["seed"] == 7
    assert five.label != other_seed.label, "a different seed must change the partition search"


def test_counterfactual_accepts_an_uploaded_region(server, tmp_path):
    truth = truth_path(server.studies, CASE)
    with open(truth, "rb") as handle:
        reply = server.infer("counterfactual", CASE, params={"region": "upload"},
                             files={"label": ("truth.nii.gz", handle, "application/octet-stream")})
    assert reply.status == 200, reply.text
    region = reply.params["mask"]
    assert region["voxels"] == int((sitk.GetArrayFromImage(sitk.ReadImage(str(truth))) > 0).sum())


def test_batch_infer_on_cpu_saves_labels(server):
    response = server.post("/batch/infer/segmentation", params={"run_sync": "true"},
                           data=json.dumps({"device": "cpu", "save_label": True, "label_tag": "original",
                                            "max_workers": 1}),
                           headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert {case for case, _, _ in CASES} <= set(result)
    for case, _, _ in CASES:
        saved = list((server.studies / "labels" / "original").glob(f"{case}.*"))
        assert saved, f"no saved label for {case}"


def test_batch_infer_default_params_do_not_break_on_cpu(server):
    """MONAI Label's default batch params ask for multi_gpu; on a CPU-only machine that must still work."""
    response = server.post("/batch/infer/segmentation", params={"run_sync": "true"})
    assert response.status_code == 200, response.text
    assert {case for case, _, _ in CASES} <= set(response.json())
