"""Which Python packages the module still needs in Slicer's Python (installed on first use, with consent).

Only distribution metadata is read (no imports), so the check is instant even for torch.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def read_requirements(path: str | Path) -> list[str]:
    """Requirement lines of a requirements.txt, comments and blank lines dropped."""
    lines = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def requirement_name(requirement: str) -> str:
    """The distribution name of one requirement line (`monai>=1.3` -> `monai`)."""
    match = _NAME.match(requirement)
    if not match:
        raise ValueError(f"cannot read the package name in requirement {requirement!r}")
    return match.group(1)


def is_installed(name: str) -> bool:
    """True when a distribution of that name is installed in this Python."""
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def missing_requirements(path: str | Path) -> list[str]:
    """Requirement lines whose package is not installed (versions are not compared: pip does that)."""
    return [r for r in read_requirements(path) if not is_installed(requirement_name(r))]
