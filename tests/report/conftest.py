"""Fixtures for the report tests: fixed findings, a small explanation folder, a local OpenAI-style server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

DATA = Path(__file__).parent / "data"


@pytest.fixture()
def glioma_findings() -> dict:
    """Findings of a synthetic glioma (Harvard-Oxford regions, counterfactual numbers), frozen in a file."""
    return json.loads((DATA / "findings_glioma.json").read_text(encoding="utf-8"))


@pytest.fixture()
def case_dir(tmp_path) -> Path:
    """A small explanation folder (input, map, summary) with a 64-voxel bright cause."""
    img = sitk.GetImageFromArray(np.pad(np.full((24, 24, 24), 100, np.float32), 4))
    img.SetSpacing((2.0, 2.0, 2.0))
    sitk.WriteImage(img, str(tmp_path / "t1.nii.gz"))
    amap = np.zeros((32, 32, 32), np.float32)
    amap[10:14, 12:16, 8:12] = 1.0
    m = sitk.GetImageFromArray(amap)
    m.CopyInformation(img)
    sitk.WriteImage(m, str(tmp_path / "map.nii.gz"))
    (tmp_path / "summary.json").write_text(json.dumps({
        "method": "rex", "target": {"index": 1, "label": "tumour"}, "score": 0.87, "forward_passes": 980,
        "seconds": 2.1, "device": "cpu", "version": "0.1.0", "input": "t1.nii.gz",
        "model": {"name": "toy", "labels": ["healthy", "tumour"]}}))
    return tmp_path


class _Handler(BaseHTTPRequestHandler):
    reply = ""
    requests: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, body))
        payload = json.dumps({"id": "x", "object": "chat.completion", "model": body.get("model"),
                              "choices": [{"index": 0, "finish_reason": "stop",
                                           "message": {"role": "assistant", "content": type(self).reply}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args):
        pass


@pytest.fixture()
def chat_server():
    """A real HTTP server on 127.0.0.1 answering every chat completion with `set_reply(text)`'s text."""
    handler = type("Handler", (_Handler,), {"reply": "", "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Endpoint:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        requests = handler.requests

        @staticmethod
        def set_reply(text: str) -> None:
            handler.reply = text

    try:
        yield Endpoint
    finally:
        server.shutdown()
        server.server_close()
