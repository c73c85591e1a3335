"""Content hashes that decide whether a case is already done.

A case is finished when its output folder holds ``done.json`` with the same hash as the one computed now
from the *bytes* of its inputs (image files, mask, model file or bundle / card with the files it names) and
the settings that change the result (command, method, seed, device, target, method options, voxcause
version). File names and timestamps do not enter the hash: renaming or touching a file keeps a case done,
changing one byte of the model reruns every case that uses it.

Each file's digest is memoised per process by its path and stat (size, times, inode), so a model shared by
a thousand cases is read once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20
_MEMO: dict[tuple[str, int, int, int, int], str] = {}
_CARD_SUFFIXES = {".json", ".yaml", ".yml"}


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex), memoised by (resolved path, size, mtime, ctime, inode)."""
    resolved = Path(path).resolve()
    info = resolved.stat()
    key = (str(resolved), info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
    if key not in _MEMO:
        digest = hashlib.sha256()
        with open(resolved, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        _MEMO[key] = digest.hexdigest()
    return _MEMO[key]


def path_digest(path: str | os.PathLike) -> str:
    """Digest of a file, or of a folder (DICOM series, MONAI bundle): each file's relative path and bytes."""
    source = Path(path)
    if source.is_file():
        return file_digest(source)
    digest = hashlib.sha256()
    for item in sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(item.relative_to(source).as_posix().encode())
        digest.update(b"\0")
        digest.update(file_digest(item).encode())
    return digest.hexdigest()


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def model_digest(path: str | os.PathLike) -> str:
    """Digest of a model: a file or bundle by its bytes; a card by its bytes plus every file it names.

    A model card points at its weights (``"weights": "weights.pt"``), so the card alone would not notice
    retrained weights; every string value in the card that names an existing file beside it is hashed too.
    """
    source = Path(path)
    if source.is_dir() or source.suffix.lower() not in _CARD_SUFFIXES:
        return path_digest(source)
    digest = hashlib.sha256(file_digest(source).encode())
    try:
        text = source.read_text(encoding="utf-8")
        if source.suffix.lower() == ".json":
            card = json.loads(text)
        else:
            import yaml

            card = yaml.safe_load(text)
    except (OSError, ValueError, ImportError):
        return digest.hexdigest()
    for value in sorted(set(_strings(card))):
        if not value.strip(". /") or len(value) > 512 or "\n" in value:
            continue
        named = source.parent / value
        folder = source.parent.resolve()
        try:
            usable = named.exists() and named.resolve() not in (folder, *folder.parents)
        except OSError:
            continue
        if usable:
            digest.update(value.encode())
            digest.update(path_digest(named).encode())
    return digest.hexdigest()


def settings_digest(settings: Mapping[str, Any]) -> str:
    """Digest of JSON-serialisable settings, independent of key order."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def case_hash(
    *,
    image: Iterable[str],
    model: str,
    mask: str | None,
    settings: Mapping[str, Any],
) -> str:
    """The hash stored in a finished case's ``done.json``: inputs' bytes (channel order kept) + settings."""
    digest = hashlib.sha256()
    for index, item in enumerate(image):
        digest.update(f"image{index}:{path_digest(item)}\n".encode())
    digest.update(f"model:{model_digest(model)}\n".encode())
    digest.update(f"mask:{path_digest(mask) if mask else '-'}\n".encode())
    digest.update(f"settings:{settings_digest(settings)}\n".encode())
    return digest.hexdigest()
