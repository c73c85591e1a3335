"""Fixtures of these tests: one torch thread (see `voxcause.testing.threads`)."""

from __future__ import annotations

import pytest
from voxcause.testing.threads import single_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield
