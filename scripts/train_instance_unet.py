"""Train the test suite's InstanceNorm U-Net (`voxcause.testing.instance_unet`): spheres, not cubes, at 32^3.

Fixed seeds, CPU, one torch thread, about two minutes. Writes ``weights.pt`` (state dict, float32), the cards
``whole.json`` and ``windowed.json`` and ``metrics.json`` (held-out Dice at 32^3 and 64^3) into
``core/voxcause/testing/models/instance_unet/``. Run: ``.venv/bin/python scripts/train_instance_unet.py``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from monai.networks.nets import UNet
from voxcause.testing.instance_unet import FOLDER, NETWORK, make_volume


def zscore(image: np.ndarray) -> np.ndarray:
    return (image - image.mean()) / image.std()


def batch(rng: np.random.Generator, count: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [make_volume(size, rng, spheres=int(rng.integers(1, 3)), cubes=int(rng.integers(1, 3)))
             for _ in range(count)]
    images = np.stack([zscore(image) for image, _, _ in pairs])[:, None]
    labels = np.stack([label for _, label, _ in pairs]).astype(np.int64)
    return torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels)


def dice(network: torch.nn.Module, *, size: int, count: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    overlap = total = 0
    with torch.no_grad():
        for _ in range(count):
            x, y = batch(rng, 1, size)
            predicted = network(x).argmax(1)
            overlap += int(((predicted == 1) & (y == 1)).sum())
            total += int((predicted == 1).sum() + (y == 1).sum())
    return 2 * overlap / max(total, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    settings = {key: value for key, value in NETWORK.items() if key != "_target_"}
    network = UNet(**settings)
    optimiser = torch.optim.Adam(network.parameters(), lr=args.lr)
    weight = torch.tensor([1.0, 4.0])  # spheres are a few percent of the voxels
    started = time.perf_counter()
    for step in range(args.steps):
        x, y = batch(rng, args.batch, args.size)
        loss = torch.nn.functional.cross_entropy(network(x), y, weight=weight)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 50 == 0:
            print(f"step {step} loss {float(loss):.4f}", flush=True)
    network.eval()
    FOLDER.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), FOLDER / "weights.pt")
    card = {
        "name": "instance_unet",
        "task": "segmentation",
        "network": NETWORK,
        "weights": "weights.pt",
        "labels": ["background", "sphere"],
        "normalize": "zscore",
        "activation": "softmax",
    }
    (FOLDER / "whole.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    windowed = {**card, "name": "instance_unet_windowed",
                "inference": {"sliding_window": {"roi_size": [32, 32, 32], "overlap": 0.25, "sw_batch_size": 4,
                                                 "mode": "gaussian"}}}
    (FOLDER / "windowed.json").write_text(json.dumps(windowed, indent=2) + "\n", encoding="utf-8")
    metrics = {
        "steps": args.steps, "batch": args.batch, "size": args.size, "lr": args.lr, "seed": args.seed,
        "seconds": round(time.perf_counter() - started, 1),
        "dice_32": round(dice(network, size=32, count=16, seed=101), 3),
        "dice_64": round(dice(network, size=64, count=8, seed=102), 3),
    }
    (FOLDER / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
