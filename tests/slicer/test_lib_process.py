"""The process runner: output streamed without blocking, exit codes, CPU mode, Cancel kills the whole tree."""

import json
import os
import sys
import time
from pathlib import Path

import pytest
from VoxCauseLib.options import Device
from VoxCauseLib.process import ProcessEventKind, ProcessRunner, child_environment
from VoxCauseLib.progress import Done, Failed, Log, Progress

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still answers kill(0): look at its state
        return Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").split()[2] != "Z"
    except OSError:
        return True


def test_events_arrive_in_order_with_the_exit_code():
    script = (
        "import json, sys\n"
        "print('plain line')\n"
        "for f in (0.0, 0.5): print(json.dumps({'event': 'progress', 'stage': 's', 'fraction': f}), file=sys.stderr)\n"
        "print(json.dumps({'event': 'error', 'message': 'bad model'}), file=sys.stderr)\n"
        "sys.exit(2)\n"
    )
    runner = ProcessRunner([sys.executable, "-u", "-c", script])
    runner.start()
    events = runner.wait(timeout=30)
    assert [e.event for e in events if e.kind is ProcessEventKind.OUTPUT] == [
        Log("plain line"),
        Progress("s", 0.0),
        Progress("s", 0.5),
        Failed("bad model"),
    ]
    assert events[-1].kind is ProcessEventKind.EXITED and events[-1].returncode == 2
    assert runner.returncode == 2 and not runner.running
    assert runner.poll() == []


def test_poll_never_blocks_while_the_child_works():
    runner = ProcessRunner([sys.executable, "-c", "import time; time.sleep(3); print('late')"])
    runner.start()
    t0 = time.monotonic()
    assert runner.poll() == []
    assert time.monotonic() - t0 < 0.1
    runner.cancel()
    runner.wait(timeout=10)


def test_cpu_mode_hides_gpus_and_cuda_mode_does_not():
    probe = [
        sys.executable,
        "-c",
        "import json, os; print(json.dumps({'event': 'done', 'out': repr(os.environ.get('CUDA_VISIBLE_DEVICES'))}))",
    ]
    outs = []
    for device in (Device.CPU, Device.CUDA):
        env = child_environment(device, base={"PATH": os.environ["PATH"], "CUDA_VISIBLE_DEVICES": "0"})
        runner = ProcessRunner(probe, env=env)
        runner.start()
        outs += [e.event.out for e in runner.wait(timeout=30) if isinstance(e.event, Done)]
    assert outs == ["''", "'0'"]
    env = child_environment(Device.CPU, base={})
    assert env["PYTHONUNBUFFERED"] == "1" and env["CUDA_VISIBLE_DEVICES"] == ""


def test_cancel_kills_the_child_and_its_grandchild(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time, json\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "while True:\n"
        "    print(json.dumps({'event': 'progress', 'stage': 'busy', 'fraction': 0.1}), flush=True)\n"
        "    time.sleep(0.05)\n"
    )
    runner = ProcessRunner([sys.executable, "-c", script])
    runner.start()
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text(encoding="utf-8"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    grandchild = int(pid_file.read_text(encoding="utf-8"))
    child = runner.pid
    assert _alive(child) and _alive(grandchild)
    t0 = time.monotonic()
    runner.cancel(grace=1.0)
    elapsed = time.monotonic() - t0
    events = runner.wait(timeout=10)
    assert events[-1].kind is ProcessEventKind.EXITED and events[-1].returncode != 0
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child) and not _alive(grandchild)
    assert elapsed < 4.0


def test_wait_times_out_and_leaves_the_child_running():
    runner = ProcessRunner([sys.executable, "-c", "import time; time.sleep(30)"])
    runner.start()
    with pytest.raises(TimeoutError):
        runner.wait(timeout=0.3)
    assert runner.running
    runner.cancel()
    runner.wait(timeout=10)
    assert not runner.running


def test_a_runner_starts_once():
    runner = ProcessRunner([sys.executable, "-c", "print(json)"])
    runner.start()
    with pytest.raises(RuntimeError):
        runner.start()
    events = runner.wait(timeout=30)
    assert events[-1].returncode == 1  # NameError: json is not defined in the child
    assert json  # keeps the import meaningful for readers of the child script
