"""Atomic writes: a result file either appears whole or not at all.

Every writer in voxcause writes to a temporary name beside the target and renames it on success, so an
interrupted or failing run never leaves a half-written file where a user (or Slicer) would open it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _suffixes(path: Path) -> str:
    """Keep compound suffixes (``.nii.gz``, ``.seg.nrrd``) so format-sniffing writers still work."""
    return "".join(path.suffixes[-2:]) if path.name.count(".") >= 2 else path.suffix


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; rename it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=_suffixes(target), dir=target.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600 files; results should read like any other file
        os.replace(temp, target)
    finally:
        if temp.exists():
            temp.unlink()


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success its files are moved into ``path``.

    Files already in ``path`` that the block did not produce are left alone, so an output folder the user
    pointed at is never emptied.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        target.mkdir(parents=True, exist_ok=True)
        for item in staging.iterdir():
            destination = target / item.name
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)
            os.replace(item, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
