"""The server keeps answering while it explains, and is not tricked (issue 21, points 3, 10 and 12).

Against the real server of conftest.py:

- a bad-input table: every malformed request is a 4xx with a short message, echoes at most 80 characters of a
  value, reads no image (the server log's ``ReadVolume`` count stays the same) and writes nothing into the
  studies folder; the server answers ``/info/`` after each;
- the upload guard: a file in the temp folder that no request uploaded is refused exactly like a path that
  does not exist (no 200, no 413 telling its size);
- concurrency: while an explanation runs, ``/info/`` and bad requests answer and a request for another model
  runs at the same time (both listed as running in ``GET /queue/``), a request for the same model waits in line,
  and requests whose clients disconnect are stopped. Nothing here is timed: each check is made while the long
  request is seen running before and after it.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from ml_server import CASES, requests

pytestmark = pytest.mark.monailabel

CASE = CASES[0][0]
ECHO_CHARS = 80


def reads(server) -> int:
    """How many images the server has read so far (MONAI Label logs each run of the app's ReadVolume stage)."""
    return server.log.read_text(errors="replace").count("Transform (ReadVolume)")


def files_under(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


LONG = "x" * 50_000
#: (case, request, status, words in the message). A request: task, query image, params (a dict is sent as JSON,
#: a string as is), extra query values, files.
BAD_REQUESTS = [
    ("unknown task", ("no_such_task", CASE, {}, {}, None), 404, ("no task 'no_such_task'", "explain_rex", "/info/")),
    ("params not JSON", ("explain_rex", CASE, "{levels: 3", {}, None), 422, ("params", "not valid JSON")),
    ("params a list", ("explain_rex", CASE, "[1, 2]", {}, None), 422, ("params", "array", "object")),
    ("params a number", ("explain_rex", CASE, "7", {}, None), 422, ("params", "number", "object")),
    ("iterations 1e400", ("explain_rex", CASE, '{"iterations": 1e400}', {}, None), 422, ("1e400", "out of range")),
    ("NaN", ("explain_rex", CASE, '{"levels": NaN}', {}, None), 422, ("NaN",)),
    ("1,000-digit integer", ("explain_rex", CASE, '{"levels": ' + "9" * 1000 + "}", {}, None), 422,
     ("1,000 digits",)),
    ("100,000 nested brackets", ("explain_rex", CASE, _nested(100_000), {}, None), 422, ("bytes long",)),
    ("20,000 nested brackets", ("explain_rex", CASE, _nested(20_000), {}, None), 422, ("nested deeper",)),
    ("nested 9 deep", ("explain_rex", CASE, '{"target": ' + _nested(9) + "}", {}, None), 422, ("nested deeper",)),
    ("50 kB target", ("explain_rex", CASE, {"target": LONG}, {}, None), 422, ("target", "50,002 characters")),
    ("unknown output", ("segmentation", CASE, {}, {"output": "pdf"}, None), 422, ("output='pdf'", "json")),
    ("output dicom_seg", ("segmentation", CASE, {}, {"output": "dicom_seg"}, None), 422, ("dicom_seg", "PACS")),
    ("no image", ("segmentation", "", {}, {}, None), 400, ("no image given",)),
    ("unknown session", ("segmentation", "", {}, {"session_id": "no-such-session"}, None), 404, ("no session",)),
    ("5,000-character image id", ("segmentation", "y" * 5000, {}, {}, None), 404, ("no image with id",)),
    ("label in params", ("counterfactual", CASE, {"region": "upload", "label": "/etc/hostname"}, {}, None), 400,
     ("'label' must be a file uploaded",)),
    ("scribbles label", ("counterfactual", CASE, {"region": "upload"}, {},
                         {"label": ("label.bin", b"\0" * 64)}), 415, (".bin label",)),
    ("file as 20 kB text", ("segmentation", CASE, {}, {}, {"file": (None, b"x" * 20_000)}), 422,
     ("'file' holds text",)),
]


def send(server, task: str, image: str, params, query: dict, files: dict | None):
    body = params if isinstance(params, str) else json.dumps(params)
    parts = {key: (name, io.BytesIO(content), "application/octet-stream") if name else (None, content)
             for key, (name, content) in (files or {}).items()}  # no file name: a text field
    response = server.post(f"/infer/{task}", params={**({"image": image} if image else {}), **query},
                           data={"params": body}, files=parts or None, timeout=120)
    try:
        detail = response.json().get("detail", "")
    except ValueError:
        detail = ""
    return response.status_code, detail


@pytest.mark.parametrize(("case", "request_", "status", "words"), BAD_REQUESTS, ids=[row[0] for row in BAD_REQUESTS])
def test_bad_request_is_refused_at_the_door(server, case, request_, status, words):
    studies_before, reads_before = files_under(server.studies), reads(server)
    code, detail = send(server, *request_)
    assert code == status, (case, code, detail[:300])
    assert isinstance(detail, str) and detail and len(detail) < 600, (case, detail[:300])
    for word in words:
        assert word in detail, (case, word, detail)
    assert "x" * (ECHO_CHARS + 1) not in detail and "y" * (ECHO_CHARS + 1) not in detail, (case, detail)
    assert reads(server) == reads_before, f"{case}: the server read an image for a request it refused"
    assert files_under(server.studies) == studies_before, f"{case}: the server wrote into the studies folder"
    assert server.get("/info/").status_code == 200


@pytest.fixture
def someone_elses_upload(server):
    """A valid case image, and a 15 MB file, in the server's temp folder, named as MONAI Label names uploads."""
    made = []
    for size in ("image", "large"):
        descriptor, name = tempfile.mkstemp(prefix="tmp", suffix=".nii.gz")
        os.close(descriptor)
        path = Path(name)
        if size == "image":
            shutil.copyfile(server.studies / f"{CASE}.nii.gz", path)
        else:
            path.write_bytes(b"\0" * (15 * 2**20))
        made.append(path)
    yield made
    for path in made:
        path.unlink(missing_ok=True)


def test_a_temp_file_nobody_uploaded_is_refused_like_a_missing_path(server, someone_elses_upload):
    missing = Path(tempfile.gettempdir()) / "tmpnothinghere0.nii.gz"
    reads_before = reads(server)
    code, expected = send(server, "segmentation", str(missing), {}, {}, None)
    assert code == 400 and "is a path, not an image id" in expected, (code, expected)
    for path in someone_elses_upload:
        code, detail = send(server, "segmentation", str(path), {}, {}, None)
        assert code == 400, (path, code, detail)
        assert detail.replace(str(path), "PATH") == expected.replace(str(missing), "PATH")  # no size, no existence
        code, detail = send(server, "segmentation", CASE, {"image": str(path)}, {}, None)  # smuggled in params
        assert code == 400 and "is a path" in detail, (code, detail)
    assert reads(server) == reads_before


def test_a_session_image_is_served_and_only_through_its_session(server):
    """MONAI Label's sessions (upload once, ask many times): ``?session_id=`` serves the session's image; the
    same file named as ``image`` (its path is in the session's JSON) is refused like any path."""
    with open(server.studies / f"{CASE}.nii.gz", "rb") as handle:
        created = server.put("/session/", files={"files": (f"{CASE}.nii.gz", handle, "application/octet-stream")})
    assert created.status_code == 200, created.text
    session = created.json()
    code, detail = send(server, "segmentation", session["session_info"]["image"], {}, {}, None)
    assert code == 400 and "is a path" in detail, (code, detail)
    reply = server.infer("segmentation", params={}, files=None, session_id=session["session_id"])
    assert reply.status == 200, reply.text
    assert reply.params["label_names"], reply.params


# ---- concurrency ---------------------------------------------------------------------------------------------

class InFlight:
    """An /infer request on a connection of its own, sent without waiting for the reply, that the test can
    drop as a closed client would."""

    def __init__(self, server, task: str, params: dict) -> None:
        prepared = requests.Request("POST", f"{server.url}/infer/{task}", params={"image": CASE},
                                    data={"params": json.dumps(params)}).prepare()
        address = urlsplit(server.url)
        self.connection = http.client.HTTPConnection(address.hostname, address.port, timeout=600)
        self.connection.request("POST", prepared.path_url, body=prepared.body, headers=dict(prepared.headers))

    def disconnect(self) -> None:
        self.connection.sock.shutdown(socket.SHUT_RDWR)
        self.connection.close()


def queue(server) -> list[dict]:
    return server.get("/queue/", timeout=30).json()["requests"]


def wait_for(server, predicate, what: str, seconds: float = 300) -> list[dict]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        jobs = queue(server)
        if predicate(jobs):
            return jobs
        time.sleep(0.5)
    pytest.fail(f"not seen within {seconds:.0f} s: {what}; queue {queue(server)}\n{server.log_tail(20)}")


def running(jobs: list[dict], model: str) -> bool:
    return any(job["state"] == "running" and job["model"] == model for job in jobs)


def test_the_server_answers_and_runs_other_models_while_an_explanation_runs(server, info):
    if "classifier" not in info["models"]["explain_rex"]["config"]["explained_model"]:
        pytest.skip("needs a second model (the classifier)")
    stopped_before = server.log.read_text(errors="replace").count("stopped: the client disconnected")
    long_rex = {"iterations": 30, "seed": 11}
    first = InFlight(server, "explain_rex", {**long_rex, "explained_model": "segmenter"})
    wait_for(server, lambda jobs: running(jobs, "segmenter"), "the explanation running on the segmenter")

    started = time.perf_counter()
    assert server.get("/info/", timeout=60).status_code == 200
    info_seconds = time.perf_counter() - started
    assert send(server, "explain_rex", CASE, "[1, 2]", {}, None)[0] == 422
    assert send(server, "explain_rex", CASE, {"levels": 0}, {}, None)[0] == 422  # same task and model
    assert send(server, "segmentation", "no_such_case", {}, {}, None)[0] == 404
    assert running(queue(server), "segmenter"), "the explanation ended before the checks: make it longer"

    second = InFlight(server, "explain_rex", {**long_rex, "explained_model": "classifier"})
    both = wait_for(server, lambda jobs: running(jobs, "segmenter") and running(jobs, "classifier"),
                    "explanations of the segmenter and the classifier running at the same time")
    queued = InFlight(server, "segmentation", {})
    wait_for(server, lambda jobs: any(job["state"] == "waiting for the segmenter" for job in jobs),
             "a segmentation waiting in line for the segmenter")
    print(f"\n/info/ answered in {info_seconds:.2f} s during an explanation; queue with two models: {both}")

    queued.disconnect()
    wait_for(server, lambda jobs: not any(job["state"].startswith("waiting") for job in jobs),
             "the disconnected segmentation leaving the line", seconds=60)
    first.disconnect()
    second.disconnect()
    wait_for(server, lambda jobs: not jobs, "the disconnected explanations stopping")
    stopped = server.log.read_text(errors="replace").count("stopped: the client disconnected") - stopped_before
    assert stopped == 3, f"{stopped} of 3 disconnected requests were stopped (the others ran to the end)"
    reply = server.infer("segmentation", CASE)  # both models are free again
    assert reply.status == 200, reply.text
