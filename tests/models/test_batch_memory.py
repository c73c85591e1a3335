"""The mutant batch is sized from the device's free memory (issue 23), on the CPU from the memory available."""

from __future__ import annotations

import voxcause.models.loaded as loaded_module
from voxcause.models.loaded import MAX_AUTO_BATCH, auto_batch_size, available_memory


def test_batch_follows_the_available_memory(monkeypatch):
    monkeypatch.setattr(loaded_module, "available_memory", lambda: 8 * 2**30)
    assert auto_batch_size((1, 64, 64, 64), "cpu") == MAX_AUTO_BATCH
    assert auto_batch_size((1, 256, 256, 256), "cpu") == 2
    monkeypatch.setattr(loaded_module, "available_memory", lambda: 64 * 2**30)
    assert auto_batch_size((1, 256, 256, 256), "cpu") == 16
    monkeypatch.setattr(loaded_module, "available_memory", lambda: 2**20)
    assert auto_batch_size((1, 256, 256, 256), "cpu") == 1


def test_available_memory_reads_the_machine():
    assert 2**20 < available_memory() < 2**50
