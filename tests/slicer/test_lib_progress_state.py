"""Progress-line parsing and the Apply/Cancel state machine."""

import math

import pytest
from VoxCauseLib.progress import Done, Failed, Log, Progress, parse_line, percent
from VoxCauseLib.state import ExitCode, InvalidTransition, Outcome, RunMachine, RunState, StateChange


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"event": "progress", "stage": "causal search", "fraction": 0.42}\n', Progress("causal search", 0.42)),
        ('{"event":"progress","stage":"x","fraction":1.7}', Progress("x", 1.0)),
        ('{"event":"progress","stage":"x","fraction":-3}', Progress("x", 0.0)),
        ('{"event":"progress","stage":"x","fraction":"half"}', Progress("x", 0.0)),
        ('{"event":"progress","stage":"x","fraction":NaN}', Progress("x", 0.0)),
        ('{"event":"progress","fraction":0.5}', Progress("", 0.5)),
        ('{"event": "done", "out": "/tmp/run"}', Done("/tmp/run")),
        (
            '{"event": "error", "message": "model does not load: choose a .ts file"}',
            Failed("model does not load: choose a .ts file"),
        ),
        ('{"event": "error"}', Failed("the run failed without a message")),
        ('{"event": "error", "message": "m", "code": "needs_network"}', Failed("m", code="needs_network")),
        ("Traceback (most recent call last):", Log("Traceback (most recent call last):")),
        ('{"event": "something new"}', Log('{"event": "something new"}')),
        ("{not json", Log("{not json")),
        ("[1, 2]", Log("[1, 2]")),
        ('{"no": "event"}', Log('{"no": "event"}')),
        ("   \n", None),
        ("", None),
    ],
)
def test_parse_line(line, expected):
    assert parse_line(line) == expected


def test_panel_words_a_known_error_code_in_its_own_terms():
    refused = Failed("method 'gradcam' needs an eager network — use --method rex", code="needs_network")
    assert "'Causal responsibility (ReX)'" in refused.panel_message() and "--method" not in refused.panel_message()
    assert Failed("model not found — check --model", code="bad_input").panel_message() == "model not found — check --model"


def test_percent_rounds_to_the_bar():
    assert percent(Progress("a", 0.424)) == 42
    assert percent(Progress("a", 1.0)) == 100
    assert not math.isnan(parse_line('{"event":"progress","fraction":Infinity}').fraction)


def _machine():
    events: list[StateChange] = []
    return RunMachine(listener=events.append), events


def test_apply_run_succeed():
    machine, events = _machine()
    assert machine.button.text == "Apply" and machine.button.enabled and not machine.busy
    machine.start()
    assert machine.state is RunState.RUNNING and machine.button.text == "Cancel" and machine.busy
    assert machine.finish(0) is Outcome.SUCCEEDED
    assert machine.state is RunState.IDLE and machine.button.text == "Apply"
    assert [(e.old, e.new, e.outcome) for e in events] == [
        (RunState.IDLE, RunState.RUNNING, None),
        (RunState.RUNNING, RunState.IDLE, Outcome.SUCCEEDED),
    ]


def test_cancel_is_reported_as_cancelled_whatever_the_killed_process_returns():
    for code in (0, 1, -9, 137, None):
        machine, events = _machine()
        machine.start()
        assert machine.cancel() is True
        assert machine.button.text == "Cancelling…" and not machine.button.enabled
        assert machine.cancel() is False  # second click: nothing more to kill
        assert machine.finish(code) is Outcome.CANCELLED
        assert "Cancelled" in events[-1].message


@pytest.mark.parametrize(
    ("code", "outcome", "message"),
    [
        (ExitCode.OK, Outcome.SUCCEEDED, ""),
        (ExitCode.BAD_INPUT, Outcome.BAD_INPUT, "the core's line"),
        (ExitCode.INTERNAL, Outcome.FAILED, "The run failed (exit code 1); see the log below."),
        (-11, Outcome.FAILED, "The run failed (exit code -11); see the log below."),
        (None, Outcome.FAILED, "The run failed (exit code None); see the log below."),
    ],
)
def test_exit_codes(code, outcome, message):
    machine, events = _machine()
    machine.start()
    assert machine.finish(code, message="the core's line" if code == ExitCode.BAD_INPUT else "") is outcome
    assert machine.message == message and machine.outcome is outcome
    assert (events[-1].new, events[-1].outcome, events[-1].message) == (RunState.IDLE, outcome, message)


def test_reject_keeps_idle_with_the_message():
    machine, events = _machine()
    machine.reject("No input volume selected: choose one.")
    assert machine.state is RunState.IDLE and machine.outcome is Outcome.BAD_INPUT
    assert events[-1].message.startswith("No input volume")


def test_invalid_transitions_raise():
    machine, _ = _machine()
    with pytest.raises(InvalidTransition):
        machine.finish(0)
    assert machine.cancel() is False
    machine.start()
    with pytest.raises(InvalidTransition):
        machine.start()
    with pytest.raises(InvalidTransition):
        machine.reject("x")
