"""The co-cause benchmark measures what it says: a single cause holds the mass, a conjunctive pair splits it."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import bench_cocause  # noqa: E402


def test_one_run_per_kind_gives_the_expected_shares_and_a_met_table(tmp_path, capsys):
    out = tmp_path / "cocause.md"
    assert bench_cocause.main(["--kinds", "single", "conjunctive", "--sizes", "32", "--seeds", "0", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count("**met**") == 2 and "not met" not in text
    assert "| single | 32³ | 1 | — |" in text
    printed = capsys.readouterr().out
    assert "conjunctive  32^3 seed 0: share 0.50" in printed


def test_the_target_rejects_a_lopsided_pair_and_mass_on_the_decoy():
    pair = [{"kind": "disjunctive", "first_share": 0.9, "on_causes": 0.95, "on_decoy": 0.0}]
    assert not bench_cocause.met(pair)
    single = [{"kind": "single", "first_share": 1.0, "on_causes": 0.95, "on_decoy": 0.05}]
    assert not bench_cocause.met(single)
    assert bench_cocause.met([{**single[0], "on_decoy": 0.0}])
