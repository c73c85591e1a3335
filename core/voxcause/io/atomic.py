"""Atomic writes that never delete what the user made.

Every writer in voxcause writes to a temporary name beside the target and renames it on success, so an
interrupted or failing run never leaves a half-written file where a user (or Slicer) would open it.

A folder voxcause writes into keeps a manifest, ``.voxcause-outputs.json``, naming every file and folder it
placed there. An existing name is replaced only when the manifest records it (a previous run's result);
a file or folder of that name that voxcause did not write is refused (InputError, exit 2) before anything is
moved, so a user's ``summary.json`` or ``overview.png/`` folder is never replaced or removed.

Temporary names carry voxcause's mark and the writing process's id (``.NAME.voxcause-staging-PID-XXXX``): a run
killed with SIGKILL leaves one behind, and the next write into that folder removes those whose process is gone —
only names with that mark, so a user's own hidden ``.draft.partial-2024-…`` is never taken for one. Ctrl-C (SIGINT) during a
write is held until the file in hand is complete (SimpleITK would otherwise swallow it), then raised, so the
run stops with nothing half-written in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError

MANIFEST = ".voxcause-outputs.json"
_TEMPORARY = re.compile(r"^\..+\.voxcause-(staging|partial)-(\d+)-")


def _suffixes(path: Path) -> str:
    """Keep compound suffixes (``.nii.gz``, ``.seg.nrrd``) so format-sniffing writers still work."""
    return "".join(path.suffixes[-2:]) if path.name.count(".") >= 2 else path.suffix


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale(folder: Path) -> None:
    """Remove temporary files and staging folders left in ``folder`` by voxcause processes that no longer run."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            found = _TEMPORARY.match(entry.name)
            if found and int(found.group(2)) != os.getpid() and not _alive(int(found.group(2))):
                path = Path(entry.path)
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


def recorded(folder: Path) -> dict[str, str]:
    """``{name: "file" | "folder"}`` of what voxcause wrote into ``folder`` (its manifest; empty without one)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    written = data.get("written") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in written.items()} if isinstance(written, dict) else {}


def _record(folder: Path, names: dict[str, str]) -> None:
    written = recorded(folder) | names
    handle, temp = tempfile.mkstemp(prefix=f".{MANIFEST}.voxcause-partial-{os.getpid()}-", dir=folder)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump({"written": dict(sorted(written.items()))}, file, indent=1)
    os.chmod(temp, 0o666 & ~_umask())
    os.replace(temp, folder / MANIFEST)


def _kind(path: Path) -> str:
    return "folder" if path.is_dir() and not path.is_symlink() else "file"


def check_free(target: Path, kind: str) -> None:
    """Refuse ``target`` if something is there that voxcause did not write (as that kind) into its folder."""
    if not (target.exists() or target.is_symlink()):
        return
    if recorded(target.parent).get(target.name) == kind == _kind(target):
        return
    raise InputError(
        f"cannot write {target}: a {_kind(target)} of that name is already there and voxcause did not write it "
        "— move it away or choose another --out (voxcause never replaces what it did not make)"
    )


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold SIGINT while the block runs and raise KeyboardInterrupt after it (main thread only).

    SimpleITK's writers swallow a Ctrl-C that arrives while they run; a handler that only records it keeps the
    interrupt for after the file is complete (then the previous handler runs, or KeyboardInterrupt is raised).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, _frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if not caught or previous is signal.SIG_IGN:
        return
    if callable(previous) and previous is not signal.default_int_handler:
        previous(signal.SIGINT, None)  # the host's own handler (a server's graceful shutdown), now
    else:
        raise KeyboardInterrupt


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; rename it onto ``path`` only if the block succeeds.

    Raises InputError (before the block runs) when ``path`` holds something voxcause did not write.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target.parent)
    check_free(target, "file")
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{target.name}.voxcause-partial-{os.getpid()}-", suffix=_suffixes(target), dir=target.parent
    )
    os.close(handle)
    temp = Path(temp_name)
    try:
        with interrupts_held():
            yield temp
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600 files; results should read like any other file
        check_free(target, "file")
        os.replace(temp, target)
        _record(target.parent, {target.name: "file"})
    finally:
        if temp.exists():
            temp.unlink()


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success its files are moved into ``path``.

    Files already in ``path`` that the block did not produce are left alone, so an output folder the user
    pointed at is never emptied; a name the block produced that is taken by something voxcause did not write
    refuses the whole move (InputError) before anything is moved.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.voxcause-staging-{os.getpid()}-", dir=target.parent))
    try:
        with interrupts_held():
            yield staging
        produced = {item.name: _kind(item) for item in staging.iterdir() if item.name != MANIFEST}
        if target.exists() and not target.is_dir():
            raise InputError(f"cannot write to {target}: it is a file — choose another --out")
        for name, kind in produced.items():
            check_free(target / name, kind)
        with interrupts_held():
            target.mkdir(parents=True, exist_ok=True)
            for name, kind in produced.items():
                destination = target / name
                if kind == "folder" and destination.is_dir() and not destination.is_symlink():
                    shutil.rmtree(destination)  # a folder a previous run wrote (the manifest says so)
                os.replace(staging / name, destination)
            _record(target, produced)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
