"""The causal explanation exposes the shortcut: on one held-out tagged glioma, ReX puts the shortcut3d model's
responsibility on the scanner tag, and the honest classifier3d's on the tumour.

Both models call the image "glioma" (the tag's code is the tumour's class), so accuracy cannot tell them
apart; only where the responsibility lies can. The patient's seed is in the held-out range (never trained on).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from voxcause import explain
from voxcause.explanation import Explanation
from voxcause.io import Volume
from voxcause.samples import KINDS, LABELS, Patient, make_patient, marker_mask, model_path
from voxcause.samples.training import HELDOUT_SEED_BASE

SEED = HELDOUT_SEED_BASE + 700
KIND = "glioma"
ITERATIONS = 10  # ReX partitions: enough for a stable peak on these 48 x 56 x 48 inputs, ~5 s per model
MARGIN = 2  # image voxels (4 mm) grown around the tag and the tumour: about one voxel of the models' grid

@pytest.fixture(scope="module")
def tagged() -> Patient:
    return make_patient(SEED, KIND, marker=KINDS.index(KIND))


@pytest.fixture(scope="module")
def regions(tagged) -> dict[str, np.ndarray]:
    """The tag and the tumour, each grown by `MARGIN` (the map is resampled from a coarser grid)."""
    return {
        "marker": ndimage.binary_dilation(marker_mask(tagged), iterations=MARGIN),
        "lesion": ndimage.binary_dilation(tagged.label > 0, iterations=MARGIN),
    }


@pytest.fixture(scope="module")
def explanations(tagged) -> dict[str, Explanation]:
    """ReX explanations of both models on the same tagged image (each explains its own prediction: glioma)."""
    volume = Volume(array=tagged.channels.astype(np.float32), reference=tagged.image(tagged.channels[0]))
    out = {}
    for name in ("shortcut3d", "classifier3d"):
        result = explain(volume, model=model_path(name), method="rex", seed=0, iterations=ITERATIONS)
        assert result.target["label"] == LABELS[KINDS.index(KIND)], (name, result.target)
        assert not result.stats["warnings"], (name, result.stats["warnings"])
        out[name] = result
    return out


def _where(result: Explanation, regions: dict[str, np.ndarray]) -> dict[str, float]:
    """Where an explanation lies: per region, whether the map's peak is in it (1/0), its share of the map's
    positive mass, and its share of the sufficient explanation (the smallest set of voxels that alone keeps
    the prediction)."""
    positive = np.clip(result.map, 0.0, None)
    peak = np.unravel_index(int(np.argmax(result.map)), result.map.shape)
    sufficient = result.masks["sufficient"]
    out = {}
    for name, mask in regions.items():
        out[f"peak_in_{name}"] = float(mask[peak])
        out[f"mass_in_{name}"] = round(float(positive[mask].sum() / positive.sum()), 3)
        out[f"sufficient_in_{name}"] = round(float((sufficient & mask).sum() / max(1, sufficient.sum())), 3)
    return out


def test_the_shortcut_models_responsibility_is_on_the_tag(explanations, regions):
    where = _where(explanations["shortcut3d"], regions)
    assert where["peak_in_marker"] == 1.0, where
    assert where["mass_in_marker"] > 0.35, where  # the grown tag is 0.2% of the volume
    assert where["mass_in_lesion"] < 0.05, where
    assert where["sufficient_in_marker"] > 0.8, where


def test_the_honest_classifiers_responsibility_is_on_the_tumour(explanations, regions):
    where = _where(explanations["classifier3d"], regions)
    assert where["peak_in_lesion"] == 1.0, where
    assert where["mass_in_lesion"] > 0.3, where
    assert where["mass_in_marker"] < 0.05, where
    assert where["sufficient_in_lesion"] > 0.8, where


def test_the_tags_top_voxels_belong_to_the_shortcut_model_only(explanations, regions):
    """Among each map's top voxels (as many as the grown tag holds), the shortcut model's lie in the tag, the
    honest model's do not."""
    count = int(regions["marker"].sum())
    share = {}
    for name, result in explanations.items():
        top = np.argsort(result.map, axis=None)[-count:]
        share[name] = round(float(regions["marker"].ravel()[top].mean()), 3)
    assert share["shortcut3d"] > 0.5, share
    assert share["classifier3d"] < 0.05, share
