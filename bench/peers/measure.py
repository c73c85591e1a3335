"""Peak memory and timing helpers shared by the bench workers (standard library only: runs in any venv).

Peak memory is the kernel's high-water mark of this process's resident set (``VmHWM``), reset just before
the measured call (``/proc/self/clear_refs`` = 5), so import-time spikes and earlier work do not count.
"""

from __future__ import annotations

import json
import re
import resource
import sys
from pathlib import Path


def _status_kb(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def rss_mb() -> float:
    """Current resident set size in MiB."""
    kb = _status_kb("VmRSS")
    return kb / 1024 if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> bool:
    """Reset the resident-set high-water mark; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    """Peak resident set size (MiB) since the last `reset_peak` (or since start, where reset is impossible)."""
    kb = _status_kb("VmHWM")
    return kb / 1024 if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_result(path: str, result: dict) -> None:
    """Write the worker's JSON result (atomically, so the parent never reads half a file)."""
    target = Path(path)
    temp = target.with_suffix(target.suffix + ".tmp")
    temp.write_text(json.dumps(result, indent=1, default=float))
    temp.replace(target)


def publish(table: str, path: Path) -> None:
    """Print a benchmark's Markdown table and keep it in ``path`` (under the git-ignored bench/results/)."""
    print(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table + "\n")


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
