"""The benchmark's trained sphere/cube CNN keeps its known cause, and the causal bench runs voxcause at its defaults."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH / "peers"))
sys.path.insert(0, str(BENCH))

import bench_causal  # noqa: E402
import sphere_cube_cnn  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_shipped_weights_are_small_and_accurate():
    assert sphere_cube_cnn.WEIGHTS.stat().st_size < 1_000_000
    info = sphere_cube_cnn.info()
    assert min(info["heldout_accuracy"].values()) >= 0.95


def test_the_sphere_is_the_cause_and_the_cube_a_decoy_at_64():
    probabilities = sphere_cube_cnn.check_case(sphere_cube_cnn.load(), sphere_cube_cnn.make_case(64))
    assert probabilities["case"] > 0.9
    assert probabilities["sphere_hidden"] < 0.1
    assert probabilities["cube_hidden"] > 0.9


def test_defaults_row_passes_no_method_option():
    base = ["voxcause", "--model", "m.onnx", "--volume", "v.nii.gz", "--out", "o.json", "--map", "m.npy"]
    assert bench_causal.voxcause_options(bench_causal.worker_parser().parse_args(base)) == {}
    label, extra = bench_causal.VOXCAUSE_VARIANTS["min"]
    assert "forced" in label
    assert bench_causal.voxcause_options(bench_causal.worker_parser().parse_args(base + extra)) == {"occlusion": "min"}
    assert bench_causal.VOXCAUSE_VARIANTS["constant"][0].startswith("tuned")
