"""An explanation whose certificate fails must not look like a heat map in a MONAI Label client (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
from ml_server import app_module

pytestmark = pytest.mark.monailabel


@pytest.fixture(scope="module")
def labels():
    return app_module("lib.labels")


@pytest.mark.parametrize("verdict", ["pass", "weak", "fail"])
def test_a_failed_certificate_renames_and_greys_the_levels(labels, verdict):
    values = np.arange(1, 1001, dtype=np.float32).reshape(10, 10, 10)
    sufficient = np.zeros((10, 10, 10), bool)
    sufficient[0, 0, :5] = True
    segments = labels.explanation_segments("rex", values, 5, masks={"sufficient": sufficient}, verdict=verdict)
    levels = [name for name in segments.names if " level " in name]
    assert len(levels) == 5
    colours = dict(zip(segments.names, segments.colours, strict=True))
    if verdict == "fail":
        assert all(name.startswith("rex UNTRUSTED (certificate fail) level ") for name in levels)
        assert all(len(set(colours[name])) == 1 for name in levels)  # greys, not the heat scale
    else:
        assert levels == [f"rex level {k} of 5" for k in range(1, 6)]
        assert colours["rex level 5 of 5"] != colours["rex level 1 of 5"]
        assert len(set(colours["rex level 5 of 5"])) > 1  # the heat scale
