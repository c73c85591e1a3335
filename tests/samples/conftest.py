"""Shared held-out patients for the sample tests (generated once per session: ~2-3 s each)."""

from __future__ import annotations

import pytest
from voxcause.samples import KINDS, make_patient
from voxcause.samples.training import HELDOUT_SEED_BASE


@pytest.fixture(scope="session")
def heldout_patients():
    """Two held-out patients per kind (seeds from the held-out range, never trained on)."""
    return [make_patient(HELDOUT_SEED_BASE + i, kind) for kind in KINDS for i in range(2)]


@pytest.fixture(scope="session")
def patients_by_kind(heldout_patients):
    return {p.kind: p for p in heldout_patients if p.seed == HELDOUT_SEED_BASE}
