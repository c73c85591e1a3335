"""Progress only moves forward and says how long is left."""

from __future__ import annotations

import json

import torch
from voxcause.cli.main import main
from voxcause.progress import Monotone, interactive_progress, time_left
from voxcause.testing import make_case, write_nifti


def test_monotone_never_moves_back_and_stays_in_range():
    seen = []
    progress = Monotone(lambda stage, fraction: seen.append((stage, fraction)))
    for stage, fraction in [("a", 0.2), ("b", 0.1), ("done", 1.0), ("writing results", 0.99), ("x", -1), ("y", 7)]:
        progress(stage, fraction)
    assert [f for _, f in seen] == [0.2, 0.2, 1.0, 1.0, 1.0, 1.0]
    assert [s for s, _ in seen][3] == "writing results"  # the stage still shows


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
