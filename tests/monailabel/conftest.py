"""Fixtures: a real MONAI Label server over the voxcause app, started once for the tests of this folder.

The server runs as its own process (``python -m monailabel.main start_server``) on a free port of
127.0.0.1, over a studies folder of sample patients made by `voxcause.samples`; see ml_server.py.
Without the MONAI Label environment (``.ci/setup_monailabel.sh`` builds ``.venv-monailabel``) every test
here is skipped with that reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ml_server import (
    APP,
    CASES,
    HAVE_MONAILABEL,
    MAX_UPLOAD_MB,
    STARTUP_SECONDS,
    Server,
    free_port,
    requests,
    stop,
    write_case,
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAVE_MONAILABEL:
        return
    skip = pytest.mark.skip(reason="needs the MONAI Label environment: run .ci/setup_monailabel.sh, then "
                            ".venv-monailabel/bin/python -m pytest tests/monailabel")
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ml") / "studies"
    folder.mkdir()
    for image_id, seed, kind in CASES:
        write_case(folder, image_id, seed, kind)
    return folder


@pytest.fixture(scope="session")
def server(studies: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    work = tmp_path_factory.mktemp("server")
    log = work / "server.log"
    env = dict(os.environ)
    env.update({
        "MONAI_LABEL_SESSION_PATH": str(work / "sessions"),
        "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2"),
        "PYTHONUNBUFFERED": "1",
    })
    command = [
        sys.executable, "-m", "monailabel.main", "start_server", "--app", str(APP), "--studies", str(studies),
        "--conf", "models", "all", "--conf", "max_upload_mb", str(MAX_UPLOAD_MB),
        "--host", "127.0.0.1", "--port", str(port),
    ]
    # e.g. VOXCAUSE_ML_CONF="segmenter=/models/seg/card.json;classifier=/models/cls/card.json" (own models)
    for pair in filter(None, os.environ.get("VOXCAUSE_ML_CONF", "").split(";")):
        key, _, value = pair.partition("=")
        command += ["--conf", key.strip(), value.strip()]
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=work, env=env,
                                   start_new_session=True)
    running = Server(url=f"http://127.0.0.1:{port}", process=process, studies=studies, log=log)
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode} while starting:\n{running.log_tail()}")
            try:
                if running.get("/info/", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready after {STARTUP_SECONDS:.0f} s:\n{running.log_tail()}")
            time.sleep(0.5)
        yield running
    finally:
        stop(process)


@pytest.fixture(scope="session")
def info(server: Server) -> dict:
    return server.get("/info/").json()


