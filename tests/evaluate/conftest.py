"""Make the shared known-cause helpers in tests/saliency importable here; one torch thread per test
(see `voxcause.testing.threads`), as in the other test folders."""

import sys
from pathlib import Path

import pytest
from voxcause.testing.threads import single_thread

sys.path.insert(0, str(Path(__file__).parent.parent / "saliency"))


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield
