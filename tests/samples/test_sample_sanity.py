"""The randomisation check on the sample models at the defaults (rex, seed 0, --efficient): the causal map does not
survive randomising the model, in at most two maps' passes.

On a held-out patient. Measured: neither random model's decision ('glioma'; the tumour region) depends on the
image (the classifier keeps it with the whole image occluded; the segmenter's search credits nothing), so their
causal maps are empty and said to be (rho 0); the random map costs 7 and 24 passes against 839 and 1,197 for the
model's own (about 60 s for both on a shared 2-core CPU).
"""

from __future__ import annotations

import numpy as np
import pytest
from voxcause.evaluate.sanity import sanity_check
from voxcause.io import Volume
from voxcause.samples import model_path


@pytest.mark.slow
@pytest.mark.parametrize("name", ["classifier3d", "segmenter3d"])
def test_sample_models_causal_maps_do_not_survive_a_random_model(name, patients_by_kind):
    patient = patients_by_kind["glioma"]
    volume = Volume(array=patient.channels.astype(np.float32), reference=patient.image(patient.channels[0]))
    result, report = sanity_check(volume, model=model_path(name), efficient=True, seed=0)
    step = report["steps"][0]
    assert abs(step["rank_correlation"]) <= 0.3 and report["verdict"] == "pass", report
    assert step["empty"]
    assert report["maps"] == 2 and report["forward_passes"] <= 2 * result.stats["forward_passes"]
