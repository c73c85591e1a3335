"""Bad requests get a 4xx with a message and leave the server serving; load and memory stay sane.

Runs against the real server of conftest.py. Every bad request is followed by a good one.
"""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
import SimpleITK as sitk
from ml_server import CASES, MAX_UPLOAD_MB

pytestmark = pytest.mark.monailabel

CASE = CASES[0][0]


def assert_still_serving(server) -> None:
    reply = server.infer("segmentation", CASE)
    assert reply.status == 200, f"a good request after a bad one failed: {reply.status} {reply.text}"


def assert_refused(reply, status: int, *words: str) -> None:
    assert reply.status == status, (reply.status, reply.text)
    detail = str(reply.params.get("detail", ""))
    assert detail, f"no message in the {status} reply: {reply.text}"
    for word in words:
        assert word in detail, (word, detail)


def nifti_bytes(array: np.ndarray, *, vector: bool = False, tmp_path) -> bytes:
    image = sitk.GetImageFromArray(array, isVector=vector)
    path = tmp_path / "upload.nii.gz"
    sitk.WriteImage(image, str(path), useCompression=True)
    return path.read_bytes()


def upload(server, task: str, content: bytes, name: str = "upload.nii.gz", params: dict | None = None):
    return server.infer(task, params=params, files={"file": (name, io.BytesIO(content), "application/octet-stream")})


def test_unknown_image_id_is_404(server):
    assert_refused(server.infer("segmentation", "no_such_case"), 404, "no_such_case", "/datastore")
    assert_still_serving(server)


@pytest.mark.parametrize("image", ["../" + CASE, "../../../../etc/passwd", "/etc/passwd", "..", f"labels/../{CASE}"])
def test_path_instead_of_id_is_400(server, image):
    assert_refused(server.infer("segmentation", image), 400, "not an image id")
    assert_still_serving(server)


def test_path_smuggled_in_params_is_400(server):
    reply = server.infer("segmentation", CASE, params={"image": "/etc/hostname"})
    assert_refused(reply, 400, "not an image id")
    reply = server.infer("counterfactual", CASE, params={"region": "upload", "label": "/etc/hostname"})
    assert_refused(reply, 400, "label")
    assert_still_serving(server)


def test_oversized_upload_is_413(server):
    content = np.random.default_rng(0).bytes((MAX_UPLOAD_MB + 1) * 2**20)
    assert_refused(upload(server, "segmentation", content), 413, "MiB")
    assert_still_serving(server)


def test_corrupt_upload_is_415(server):
    content = b"\x1f\x8b not really a gzip nifti " + np.random.default_rng(1).bytes(4096)
    assert_refused(upload(server, "segmentation", content), 415, "not a readable image")
    assert_still_serving(server)


def test_decompression_bomb_is_413_before_reading_voxels(server, tmp_path):
    image = sitk.Image([520, 520, 260], sitk.sitkUInt8)  # 70 M voxels of zeros: a few hundred kB gzipped
    path = tmp_path / "bomb.nii.gz"
    sitk.WriteImage(image, str(path), useCompression=True)
    assert path.stat().st_size < MAX_UPLOAD_MB * 2**20
    assert_refused(upload(server, "segmentation", path.read_bytes()), 413, "voxels")
    assert_still_serving(server)


@pytest.mark.parametrize(
    ("shape", "vector", "words"),
    [
        ((40, 48, 3), True, ("2D",)),  # a 2D RGB picture
        ((24, 24, 24), False, ("channel",)),  # one channel where the models take four
        ((24, 24, 24, 3), True, ("channel",)),  # three channels
        ((4, 24, 24, 4), True, ("edge",)),  # a slab thinner than any model input
    ],
)
def test_wrong_shaped_volume_is_422(server, tmp_path, shape, vector, words):
    content = nifti_bytes(np.random.default_rng(2).random(shape, dtype=np.float32), vector=vector, tmp_path=tmp_path)
    assert_refused(upload(server, "segmentation", content), 422, *words)
    assert_still_serving(server)


@pytest.mark.parametrize(
    ("task", "params", "words"),
    [
        ("explain_rex", {"levels": 0}, ("levels", "1..10")),
        ("explain_rex", {"levels": "many"}, ("levels", "integer")),
        ("explain_rex", {"levels": 2.5}, ("levels",)),
        ("explain_rex", {"iterations": 100000}, ("iterations",)),
        ("explain_rex", {"seed": -1}, ("seed",)),
        ("explain_rex", {"target": "banana"}, ("target", "banana")),
        ("explain_rex", {"explained_model": "gpt"}, ("explained_model",)),
        ("counterfactual", {"removal": "magic"}, ("removal",)),
        ("counterfactual", {"region": "upload"}, ("label",)),
        ("segmentation", {"logging": "LOUD"}, ("logging",)),
    ],
)
def test_bad_option_is_422(server, task, params, words):
    assert_refused(server.infer(task, CASE, params=params), 422, *words)
    assert_still_serving(server)


def test_target_the_model_lacks_is_422(server, info):
    """A label of the other model: the option table accepts it, the core refuses it with a message."""
    config = info["models"]["explain_rex"]["config"]
    if "classifier" not in config["explained_model"]:
        pytest.skip("no classifier configured")
    reply = server.infer("explain_rex", CASE, params={"explained_model": "segmenter", "target": "glioma",
                                                      "iterations": 1})
    assert_refused(reply, 422)
    assert_still_serving(server)


def _sequential(server, count: int) -> list[float]:
    latencies = []
    for index in range(count):
        reply = server.infer("segmentation", CASES[index % len(CASES)][0])
        assert reply.status == 200, (index, reply.text)
        latencies.append(reply.seconds)
    return latencies


def _concurrent(server) -> float:
    """Three requests at once (two segmentations and a short rex explanation); all must succeed."""
    calls = [("segmentation", {}), ("explain_rex", {"iterations": 1}), ("segmentation", {})]
    replies: list = [None] * len(calls)

    def call(slot: int) -> None:
        task, params = calls[slot]
        replies[slot] = server.infer(task, CASES[slot % len(CASES)][0], params=params)

    threads = [threading.Thread(target=call, args=(slot,)) for slot in range(len(calls))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert all(reply is not None and reply.status == 200 for reply in replies), [r and r.text for r in replies]
    return time.perf_counter() - started


@pytest.mark.slow
def test_sequential_and_concurrent_requests_succeed_with_bounded_memory(server):
    """20 requests in a row and 3 at once all succeed; the server's memory settles instead of growing."""
    mib = 2**20
    _sequential(server, 2)  # warm up: models loaded, allocator pools and caches filled
    _concurrent(server)
    rss = [server.rss_bytes()]
    latencies = _sequential(server, 20)
    rss.append(server.rss_bytes())
    concurrent_seconds = _concurrent(server)
    rss.append(server.rss_bytes())
    latencies += _sequential(server, 20)
    rss.append(server.rss_bytes())
    steps = [(b - a) / mib for a, b in zip(rss, rss[1:], strict=False)]
    print(f"\nsegmentation request latency over 40 sequential requests: median {np.median(latencies):.2f} s, "
          f"max {max(latencies):.2f} s; 3 concurrent requests (2 segmentation + rex 1 iteration): "
          f"{concurrent_seconds:.1f} s")
    print(f"server RSS after warm-up {rss[0] / mib:.0f} MiB; +{steps[0]:.0f} MiB over 20 sequential, "
          f"+{steps[1]:.0f} MiB over 3 concurrent, +{steps[2]:.0f} MiB over 20 more sequential "
          f"(end {rss[-1] / mib:.0f} MiB)")
    assert steps[0] < 64 and steps[2] < 64, f"RSS keeps growing with identical requests: {steps} MiB"
    assert (rss[-1] - rss[0]) / mib < 256, f"RSS grew {(rss[-1] - rss[0]) / mib:.0f} MiB over 43 requests"
