"""Per-case functions for the batch tests that do not need a model (importable by worker processes).

`smooth_case` does real, deterministic work on the case's image (read, smooth, write a map in the image's
geometry), can be slowed down, and logs each start with its process id so a test can kill the process that
is running a case.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage
from voxcause.batch import Case, Job
from voxcause.io import read_image, write_image


def smooth_case(case: Case, job: Job, out_dir: Path) -> dict[str, Any]:
    """Map = Gaussian-smoothed image; score = its maximum; one 'forward pass'."""
    log = job.options.get("log")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"start {case.id} {os.getpid()}\n")
    volume = read_image(list(case.image))
    time.sleep(float(job.options.get("sleep", 0.0)))
    smooth = ndimage.gaussian_filter(volume.array.mean(axis=0), sigma=1.5 + job.seed).astype(np.float32)
    write_image(smooth, volume, out_dir / "map.nii.gz")
    summary = {"score": float(smooth.max()), "forward_passes": 1, "target": {"index": 1, "label": "bright"}}
    (out_dir / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return {"score": summary["score"], "forward_passes": 1, "target": "bright"}


def write_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def threads_case(case: Case, job: Job, out_dir: Path) -> dict[str, Any]:
    """Score = the torch CPU threads this case ran with (to check how workers share a machine's cores)."""
    import torch

    threads = torch.get_num_threads()
    (out_dir / "summary.json").write_text(json.dumps({"threads": threads}), encoding="utf-8")
    return {"score": float(threads), "forward_passes": 0, "target": "threads"}


def interrupt_case(case: Case, job: Job, out_dir: Path) -> dict[str, Any]:
    """Ctrl-C as the case starts (a KeyboardInterrupt in the batch process, with ``--workers 0``)."""
    raise KeyboardInterrupt
