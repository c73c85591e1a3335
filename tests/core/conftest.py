"""Shared fixtures of the core tests: known-cause cases as files and as in-memory volumes."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Results must not depend on thread scheduling; one thread also keeps parallel CI jobs fair."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
