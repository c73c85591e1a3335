"""Train the small known-cause MONAI networks the saliency tests explain (48^3, fixed seeds, CPU, one thread).

* ``unet`` and ``segresnet``: segment a bright sphere in noise (the cause of every foreground voxel).
* ``densenet121``: sphere (class 1) vs cube (class 0, side 1.8 radius) of the same brightness, with a bright bar
  (the decoy, in every image, carrying no label information) elsewhere.

Writes ``tests/saliency/models/<name>.pt`` (state dict, float32) and ``<name>.json`` (network arguments and the
held-out accuracy / Dice). Run: ``.venv/bin/python scripts/train_known_cause.py [names...]``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parents[1] / "tests" / "saliency" / "models"
sys.path.insert(0, str(OUT.parent))

from known_cause_monai import NETWORKS, build, classification_case, segmentation_case  # noqa: E402


def _batch(kind: str, rng: np.random.Generator, size: int):
    xs, ys = [], []
    for _ in range(size):
        if kind == "segmentation":
            x, cause = segmentation_case(rng)
            xs.append(x)
            ys.append(cause.astype(np.int64))
        else:
            label = int(rng.integers(2))
            x, _, _ = classification_case(rng, label)
            xs.append(x)
            ys.append(label)
    return torch.from_numpy(np.stack(xs)[:, None]), torch.as_tensor(np.stack(ys))


def train(name: str) -> dict:
    spec = NETWORKS[name]
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = build(name)
    optimiser = torch.optim.Adam(net.parameters(), lr=spec["lr"])
    loss_fn = torch.nn.CrossEntropyLoss()
    started = time.perf_counter()
    net.train()
    for step in range(spec["steps"]):
        x, y = _batch(spec["kind"], rng, spec["batch"])
        loss = loss_fn(net(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 25 == 0:
            print(f"{name} step {step} loss {float(loss.detach()):.4f} {time.perf_counter() - started:.0f}s", flush=True)
    net.eval()
    held = np.random.default_rng(12345)
    with torch.no_grad():
        x, y = _batch(spec["kind"], held, 32)
        out = torch.cat([net(x[i : i + 8]) for i in range(0, 32, 8)])
    if spec["kind"] == "segmentation":
        pred = out.argmax(1)
        dice = float(2 * ((pred == 1) & (y == 1)).sum() / ((pred == 1).sum() + (y == 1).sum()))
        quality = {"dice": round(dice, 4)}
    else:
        quality = {"accuracy": float((out.argmax(1) == y).float().mean())}
    torch.save(net.state_dict(), OUT / f"{name}.pt")
    info = {"name": name, "seconds": round(time.perf_counter() - started, 1), **quality}
    (OUT / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    print(info, flush=True)
    return info


if __name__ == "__main__":
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for model_name in sys.argv[1:] or list(NETWORKS):
        train(model_name)
