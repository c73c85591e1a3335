"""Progress only moves forward and says how long is left."""

from __future__ import annotations

import json

import pytest
import torch
from voxcause.cli.main import main
from voxcause.progress import Monotone, PassShare, interactive_progress, time_left
from voxcause.testing import make_case, write_nifti


def test_monotone_never_moves_back_and_stays_in_range():
    seen = []
    progress = Monotone(lambda stage, fraction: seen.append((stage, fraction)))
    for stage, fraction in [("a", 0.2), ("b", 0.1), ("done", 1.0), ("writing results", 0.99), ("x", -1), ("y", 7)]:
        progress(stage, fraction)
    assert [f for _, f in seen] == [0.2, 0.2, 1.0, 1.0, 1.0, 1.0]
    assert [s for s, _ in seen][3] == "writing results"  # the stage still shows


def test_pass_share_weighs_each_stage_by_its_passes():
    """An engine whose search reports 0..0.95 over 100 passes and whose extraction (marks 0.96-0.98) takes another
    100: the marks would put half the work at 96%; weighed by passes it is at 50%, and it never goes back."""
    passes, seen = [0], []
    share = PassShare(lambda stage, fraction: seen.append(fraction), lambda: passes[0], after_search=100)
    for done in range(10, 101, 10):
        passes[0] = done
        share("responsibility", 0.95 * done / 100)
    assert seen[4] == pytest.approx(0.25) and seen[-1] == pytest.approx(0.5)
    for done, mark in ((100, 0.96), (150, 0.97), (180, 0.98), (200, 1.0)):  # each mark where its stage starts
        passes[0] = done
        share("extraction", mark)
    assert seen[-4:] == [pytest.approx(0.5), pytest.approx(0.75), pytest.approx(0.9), 1.0]
    share("responsibility (try 2)", 0.0)  # a retried search starts again: the bar does not
    assert seen[-1] == 1.0 and seen == sorted(seen)


def test_explain_progress_tracks_the_forward_passes():
    """A known-cause run with a disjunctive cause (three explanations found): at every event the bar is within 0.15
    of the share of forward passes done, and so at half of them. Measured: at most 0.14 off, 0.61 at half the
    passes, 0.89 when the extraction starts at 83% of them (the engine's own marks: 0.19, 0.67 and 0.96)."""
    from voxcause import explain
    from voxcause.testing.conv_cause import CauseClassifier, make_conv_case
    from voxcause.testing.wrapping import loaded, volume_of

    inputs, _, _ = make_conv_case(3, size=24, disjunctive=True, seed=0)
    model = loaded(CauseClassifier(3, pool="max"))
    events = []
    explain(volume_of(inputs[0].numpy()), model=model, target=1, seed=0, iterations=6,
            progress=lambda stage, fraction: events.append((model.forward_passes, fraction, stage)))
    start, total = events[0][0], events[-1][0]
    done = [(passes - start) / (total - start) for passes, _, _ in events]
    shown = [fraction for _, fraction, _ in events]
    assert shown == sorted(shown) and shown[-1] == 1.0
    assert max(abs(a - b) for a, b in zip(done, shown, strict=True)) <= 0.15, list(zip(done, shown, strict=True))
    half = min(range(len(done)), key=lambda k: abs(done[k] - 0.5))
    assert abs(shown[half] - 0.5) <= 0.15, (done[half], shown[half])
    extraction = next(k for k, (_, _, stage) in enumerate(events) if stage == "sufficient explanation")
    assert shown[extraction] - done[extraction] <= 0.08  # the stage marks said 0.96 at 0.83


def test_time_left_from_the_pace_so_far():
    assert time_left(10.0, 0.25) == 30.0
    assert time_left(1.0, 0.01) is None  # too early to say


def test_explain_json_progress_is_monotone(tmp_path, capsys):
    case = make_case("single", size=20)
    image = write_nifti(case.image[0], tmp_path / "image.nii.gz")
    torch.jit.script(case.model).save(str(tmp_path / "m.ts"))
    assert main(["explain", image, "--model", str(tmp_path / "m.ts"), "--iterations", "3", "--out",
                 str(tmp_path / "out"), "--progress", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    fractions = [e["fraction"] for e in events if e["event"] == "progress"]
    assert len(fractions) > 3 and fractions == sorted(fractions) and fractions[-1] == 1.0


def test_the_python_api_shows_a_bar_only_where_someone_looks(monkeypatch):
    """explain's default progress: a bar in a terminal (stopped at the end), nothing in a pipe or when silenced."""
    import io

    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal
    with interactive_progress(None, "x") as progress:
        assert progress is None
    with interactive_progress(False, "x") as progress:
        assert progress is None
    given = lambda stage, fraction: None  # noqa: E731
    with interactive_progress(given, "x") as progress:
        assert progress is given

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Terminal())
    with interactive_progress(None, "x") as progress:
        assert isinstance(progress, Monotone)
        progress("stage", 0.5)
    monkeypatch.setenv("VOXCAUSE_PROGRESS", "0")
    with interactive_progress(None, "x") as progress:
        assert progress is None
