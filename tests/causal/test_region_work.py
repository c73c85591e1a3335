"""Work only where the target can depend (issue 23), on a trained InstanceNorm U-Net at the defaults.

* a whole-image card: the search runs on a context crop around the region whose region score agrees with the
  full image's (`voxcause.crop`), and the certificate is scored on the full input;
* the same weights as a sliding-window card (27 windows of 32^3 on 64^3): every mutant runs only the windows
  overlapping the region — one here.
"""

from __future__ import annotations

import numpy as np
import torch
from voxcause import explain
from voxcause.certificate import CONTROLS
from voxcause.crop import TOLERANCE
from voxcause.explanation import validate_summary
from voxcause.models import load_model
from voxcause.ops import dilate
from voxcause.testing import WHOLE_CARD, WINDOWED_CARD, region_case, volume_of

SIZE = 64
WINDOWS = 27  # 32^3 windows, overlap 0.25: starts 0, 24, 32 on each axis of 64


def _near(mask: np.ndarray, sphere: np.ndarray) -> float:
    """Share of ``mask`` within two voxels of the sphere."""
    grown = dilate(torch.from_numpy(sphere), 2).numpy()
    return float((mask & grown).sum()) / max(int(mask.sum()), 1)


def test_whole_image_unet_is_searched_on_a_crop_and_certified_on_the_full_image():
    image, sphere = region_case((30, 26, 22))
    model = load_model(WHOLE_CARD)
    result = explain(volume_of(image), model=model, region=sphere, seed=0)
    summary = result.summary()
    validate_summary(summary)
    crop = summary["crop"]
    assert all(size < SIZE for size in crop["size"]) and crop["agreement"] <= TOLERANCE
    assert crop["share_of_grid"] < 0.5
    lo, hi = result.stats["searched_box"]["lo"], result.stats["searched_box"]["hi"]
    assert all(c_lo <= s_lo and s_hi <= c_hi for s_lo, s_hi, c_lo, c_hi in zip(lo, hi, crop["lo"], crop["hi"],
                                                                               strict=True))
    outside = np.ones(image.shape[1:], bool)
    outside[tuple(slice(a, b) for a, b in zip(crop["lo"], crop["hi"], strict=True))] = False
    assert float(np.abs(result.map[outside]).max()) == 0.0  # nothing outside the crop was searched
    assert "certificate_on_crop" in crop
    # the full-size passes are the certificate's only: nothing the run already scored (the image, the sufficient
    # explanation as hold_on_full left it) is scored again, the grown removal only if the removal does not lose
    stages = summary["stats"]["stage_passes"]
    assert set(stages) == {"responsibility", "extraction", "values", "certificate"}
    assert crop["passes"] == len(crop["tried"])
    if crop["grown_on_full"] == 0:
        assert crop["passes_on_full"] <= 1 + CONTROLS + 3  # alone, the controls, occluded, removal, grown removal
    assert sum(stages.values()) + crop["passes"] + crop["passes_on_full"] < result.stats["forward_passes"]
    # the certificate's checks ran on the full image: its sufficient explanation is true of the whole input
    checks = {check["name"]: check for check in result.certificate["checks"]}
    assert checks["sufficient_alone"]["passed"], result.certificate
    assert result.certificate["verdict"] in ("pass", "weak"), result.certificate
    assert _near(result.masks["sufficient"], sphere) >= 0.8


def test_windowed_unet_runs_only_the_region_windows():
    image, sphere = region_case((10, 11, 12))  # inside the first window of each axis only
    model = load_model(WINDOWED_CARD)
    result = explain(volume_of(image), model=model, region=sphere, seed=0)
    passes, windows = result.stats["forward_passes"], result.stats["window_passes"]
    full_images = 1  # the prediction the target is read from: every window
    assert windows <= WINDOWS * full_images + (passes - full_images)  # one window per mutant
    assert passes * WINDOWS >= 5 * windows
    assert result.certificate["verdict"] in ("pass", "weak"), result.certificate
    assert _near(result.masks["sufficient"], sphere) >= 0.8
