"""Counterfactuals on the trained sample models (run when `voxcause.samples` ships their cards).

* classifier3d: per-class table on held-out patients — removing the tumour lowers the tumour-class
  probability far more than removing the same place in a tumour-free brain.
* shortcut3d: the model was trained with a scanner tag that tells the label: removing the lesion barely
  matters, removing the tag does (small ΔDrop for the lesion, large for the marker).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import voxcause.samples
from voxcause.counterfactual import counterfactual, run_manifest
from voxcause.io import Volume
from voxcause.testing.files import png_size

MODELS = Path(voxcause.samples.__file__).parent / "models"
HELDOUT = 100_000 + 500  # seeds beyond the training set (training.HELDOUT_SEED_BASE and up are never trained on)


def _card(name: str) -> Path:
    finder = getattr(voxcause.samples, "model_path", None)
    if finder is not None:
        try:
            return Path(finder(name))
        except Exception:  # noqa: BLE001 - a missing sample model means: skip
            pass
    return MODELS / name / "card.json"


def _needs(name: str):
    return pytest.mark.skipif(not _card(name).exists(), reason=f"sample model {name} not built yet")


def _volume(patient) -> Volume:
    return Volume(array=patient.channels.astype(np.float32), reference=patient.image(patient.channels[0]))


@pytest.mark.slow
@_needs("classifier3d")
def test_per_class_table_on_the_sample_classifier(tmp_path) -> None:
    from voxcause.samples.generator import LABELS, make_patient

    rows, glioma = [], None
    for number, kind in enumerate(["meningioma", "glioma", "pituitary", "none"] * 2):
        seed = HELDOUT + number
        patient = make_patient(seed, kind)
        if kind == "glioma":
            glioma = patient.label > 0
        # a tumour-free brain gets the place the glioma just before occupied (same MNI grid)
        mask = glioma if kind == "none" else patient.label > 0
        sitk.WriteImage(patient.image(patient.channels), str(tmp_path / f"{kind}{seed}.nii.gz"))
        sitk.WriteImage(patient.image(mask.astype(np.uint8)), str(tmp_path / f"{kind}{seed}-mask.nii.gz"))
        rows.append({"image": f"{kind}{seed}.nii.gz", "mask": f"{kind}{seed}-mask.nii.gz",
                     "label": LABELS[patient.class_index], "patient": f"{kind}-{seed}"})
    with open(tmp_path / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = run_manifest(tmp_path / "manifest.csv", out_dir=tmp_path / "out", model=_card("classifier3d"),
                          save_cases=False, target_from="label")
    assert not result.failures
    table = {row["group"]: row for row in result.per_class}
    assert set(table) == set(LABELS) and all(row["n"] == 2 for row in table.values())
    counts = {row["group"]: row["n"] for row in result.correctness}
    expected = {"correct" if r["correct"] else "misclassified" for r in result.rows}
    assert set(counts) == expected and sum(counts.values()) == len(result.rows) == 8
    # the model learnt tumours: on correctly classified tumour cases removing the tumour takes most of
    # P(true class) away; removing the same place from a tumour-free brain changes P(no tumour) little
    correct_tumour = [r["delta_drop"] for r in result.rows if r["correct"] and r["label"] != "no tumour"]
    healthy = [r["delta_drop"] for r in result.rows if r["label"] == "no tumour"]
    assert correct_tumour and np.mean(correct_tumour) > 0.6, result.rows
    assert max(abs(d) for d in healthy) < 0.1, result.rows
    width, height = png_size(tmp_path / "out" / "distributions.png")
    assert width > 400 and height > 300


@pytest.mark.slow
def test_shortcut_model_depends_on_the_marker_not_the_lesion() -> None:
    import json

    from voxcause.samples.generator import KINDS, make_patient, marker_mask

    # the counterfactual can only show a shortcut the model actually learnt (shortcut3d ships with the package)
    metrics = json.loads((_card("shortcut3d").parent / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["follows_tag_decorrelated"] >= 0.8, metrics

    drops = {"lesion": [], "marker": []}
    for number, kind in enumerate(["glioma", "meningioma"]):
        patient = make_patient(HELDOUT + 50 + number, kind, marker=KINDS.index(kind))
        volume = _volume(patient)
        lesion = counterfactual(volume, model=_card("shortcut3d"), mask=patient.label > 0).scores
        marker = counterfactual(volume, model=_card("shortcut3d"), mask=marker_mask(patient)).scores
        drops["lesion"].append(lesion.delta_drop)
        drops["marker"].append(marker.delta_drop)
    assert np.mean(drops["marker"]) > 0.5, drops
    assert np.mean(drops["lesion"]) < 0.25, drops
    assert np.mean(drops["marker"]) > np.mean(drops["lesion"]) + 0.4, drops
