"""Train the voxcause sample models (deterministic; writes core/voxcause/samples/models/<name>/).

    python scripts/train_samples.py                      # all four models, default sizes
    python scripts/train_samples.py --models segmenter3d --cache /tmp/voxcause-train-cache

See voxcause/samples/training.py for what is trained and how it is evaluated.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from voxcause.samples.training import MODELS_DIR, SPECS, run_training


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(SPECS), help="comma-separated subset of " + ", ".join(SPECS))
    parser.add_argument("--train-per-kind", type=int, default=24, help="training patients per class")
    parser.add_argument("--heldout-per-kind", type=int, default=10, help="held-out patients per class")
    parser.add_argument("--epochs", type=json.loads, default=None, help='JSON, e.g. \'{"classifier3d": 20}\'')
    parser.add_argument("--workers", type=int, default=2, help="processes generating patients")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training")
    parser.add_argument("--cache", type=Path, default=None, help="folder caching prepared patients")
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="where the model folders go")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in SPECS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}: choose from {', '.join(SPECS)}")
    run_training(
        train_per_kind=args.train_per_kind, heldout_per_kind=args.heldout_per_kind, epochs=args.epochs,
        models=models, workers=args.workers, cache=args.cache, threads=args.threads, seed=args.seed,
        out_dir=args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
