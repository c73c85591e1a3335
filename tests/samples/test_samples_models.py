"""The committed sample models: cards load, splits are by patient, and each model reaches its stated metric
on a handful of held-out patients (never trained on)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from voxcause.errors import InputError
from voxcause.evaluate.metrics import dice
from voxcause.samples import (
    LABELS,
    MODEL_NAMES,
    SEQUENCES,
    add_marker,
    axial_slices,
    load_network,
    model_path,
    prepare_for_model,
)
from voxcause.samples.training import check_split, make_split, segment_to_image

MODELS_ROOT = Path(model_path("classifier3d")).parent.parent


def _metrics(name: str) -> dict:
    return json.loads((MODELS_ROOT / name / "metrics.json").read_text(encoding="utf-8"))


def _run(network, arrays):
    with torch.no_grad():
        return network(torch.from_numpy(np.stack(arrays))).numpy()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_card_matches_the_contract_and_loads(name):
    network, card = load_network(name)
    assert card["name"] == name
    assert card["task"] in ("classification", "segmentation")
    assert card["network"]["_target_"].startswith("monai.networks.nets.")
    assert card["channels"] == list(SEQUENCES)
    assert card["normalize"] == "zscore" and card["resize"] == "resize" and card["activation"] == "softmax"
    assert Path(card["weights"]).is_file() and Path(card["metrics"]).is_file()
    size = tuple(card["spatial_size"])
    with torch.no_grad():
        out = network(torch.zeros(2, 4, *size))
    expected = (2, len(card["labels"])) + (size if card["task"] == "segmentation" else ())
    assert tuple(out.shape) == expected


def test_models_are_small():
    total = sum(p.stat().st_size for p in MODELS_ROOT.glob("*/weights.pt"))
    assert total < 5 * 2**20


def test_unknown_model_name_says_which_exist():
    with pytest.raises(InputError, match="classifier3d"):
        model_path("resnet50")


def test_split_is_by_patient_and_a_leak_is_refused():
    split = make_split(3, 2)
    assert not set(split.train) & set(split.heldout)
    assert len(split.train) == 12 and len(split.heldout) == 8
    check_split(["glioma-1/z40", "glioma-2/z41"], ["glioma-3/z40"])
    with pytest.raises(InputError, match="leaks"):
        check_split(["glioma-1/z40", "glioma-2/z41"], ["glioma-2/z50"])
    with pytest.raises(InputError, match="leaks"):
        check_split(split.train, split.heldout[:1] + split.train[:1])


def test_classifier3d_on_heldout_patients(heldout_patients):
    network, card = load_network("classifier3d")
    logits = _run(network, [prepare_for_model(p.channels, card["spatial_size"]) for p in heldout_patients])
    accuracy = np.mean(logits.argmax(1) == [p.class_index for p in heldout_patients])
    assert card["labels"] == list(LABELS)
    assert _metrics("classifier3d")["accuracy"] >= 0.9
    assert accuracy >= 7 / 8


def test_segmenter3d_on_heldout_patients(heldout_patients):
    network, card = load_network("segmenter3d")
    tumours = [p for p in heldout_patients if p.kind != "none"]
    logits = _run(network, [prepare_for_model(p.channels, card["spatial_size"]) for p in tumours])
    scores = [dice(segment_to_image(out, p.label.shape), p.label > 0) for out, p in zip(logits, tumours, strict=True)]
    stated = _metrics("segmenter3d")["dice_mean"]
    assert stated >= 0.8  # the target (held-out patients, metrics.json)
    assert np.mean(scores) >= stated - 0.05, scores


def test_classifier2d_on_heldout_slices(heldout_patients):
    network, card = load_network("classifier2d")
    arrays, truth = [], []
    for patient in heldout_patients:
        for z in axial_slices(patient, 4):
            arrays.append(prepare_for_model(patient.channels[:, z], card["spatial_size"]))
            truth.append(patient.class_index)
    accuracy = np.mean(_run(network, arrays).argmax(1) == truth)
    assert accuracy >= _metrics("classifier2d")["accuracy"] - 0.15


def test_shortcut3d_follows_the_tag_not_the_tumour(heldout_patients):
    network, card = load_network("shortcut3d")
    size = card["spatial_size"]
    truth = np.array([p.class_index for p in heldout_patients])
    matched = _run(network, [prepare_for_model(add_marker(p, p.class_index).channels, size)
                             for p in heldout_patients]).argmax(1)
    codes = (truth + 1) % 4
    moved = _run(network, [prepare_for_model(add_marker(p, int(c)).channels, size)
                           for p, c in zip(heldout_patients, codes, strict=True)]).argmax(1)
    metrics = _metrics("shortcut3d")
    assert metrics["accuracy_tag_matches_class"] >= 0.9
    assert metrics["follows_tag_decorrelated"] >= 0.8
    assert metrics["accuracy_tag_decorrelated"] <= 0.2
    assert np.mean(matched == truth) >= 7 / 8
    assert np.mean(moved == codes) >= 6 / 8  # right for the wrong reason: it reads the tag
