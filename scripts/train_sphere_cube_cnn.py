"""Train the benchmark's known-cause CNN: sphere (class 1) vs same-brightness cube (class 0) in Gaussian noise.

Network, data and benchmark case: ``bench/peers/sphere_cube_cnn.py``. Fixed seeds, CPU, one torch thread;
training volumes are 48^3 (the network is size-agnostic: global max pool). Writes
``bench/peers/sphere_cube_cnn.pt`` (state dict, float32, ~50 KB) and ``sphere_cube_cnn.json`` (settings,
held-out accuracy at 48^3 and 64^3, and the benchmark cases at 64^3 and 128^3: P(sphere) as is, with the
sphere hidden and with the cube hidden). Run: ``.venv/bin/python scripts/train_sphere_cube_cnn.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench" / "peers"))

import sphere_cube_cnn as scc  # noqa: E402


def batch(rng: np.random.Generator, count: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = rng.integers(0, 2, count)
    images = [scc.random_volume(size, int(label), rng)[0] for label in labels]
    return torch.from_numpy(np.stack(images)[:, None]), torch.from_numpy(labels.astype(np.int64))


def accuracy(network: torch.nn.Module, *, size: int, count: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    right = 0
    with torch.no_grad():
        for start in range(0, count, 8):
            x, y = batch(rng, min(8, count - start), size)
            right += int((network(x).argmax(1) == y).sum())
    return right / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=48, help="training volume edge")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=scc.WEIGHTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    network = scc.SphereCubeCNN()
    optimiser = torch.optim.Adam(network.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.steps)
    loss_fn = torch.nn.CrossEntropyLoss()
    started = time.perf_counter()
    network.train()
    running = None
    for step in range(args.steps):
        x, y = batch(rng, args.batch, args.size)
        loss = loss_fn(network(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        value = float(loss.detach())
        running = value if running is None else 0.95 * running + 0.05 * value
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {running:.4f}  {time.perf_counter() - started:5.0f} s", flush=True)
    network.eval()
    trained_seconds = time.perf_counter() - started
    held_48 = accuracy(network, size=args.size, count=200, seed=12345)
    held_64 = accuracy(network, size=64, count=48, seed=54321)
    cases = {str(size): scc.check_case(network, scc.make_case(size)) for size in (64, 128)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), args.out)
    info = {
        "network": "SphereCubeCNN(width=16): conv3d k2 s2 (8), k2 s2 (16), k3 s2 (16), k3 (16), batch norm + ReLU each; global max pool; linear 16->2",
        "classes": ["cube", "sphere"],
        "train": {"steps": args.steps, "batch": args.batch, "size": args.size, "lr": args.lr, "seed": args.seed,
                  "noise_sigma": scc.NOISE, "brightness": scc.BRIGHT, "radii": list(scc.RADII),
                  "seconds": round(trained_seconds, 1), "torch_threads": 1},
        "heldout_accuracy": {f"{args.size}^3 (200 volumes)": held_48, "64^3 (48 volumes)": held_64},
        "benchmark_cases_p_sphere": cases,
        "bytes": args.out.stat().st_size,
    }
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(info, indent=2))
    ok = held_48 >= 0.95 and all(c["case"] > 0.5 > c["sphere_hidden"] and c["cube_hidden"] > 0.5
                                  for c in cases.values())
    print("known cause holds" if ok else "WARNING: accuracy or the benchmark cases' cause does not hold")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
