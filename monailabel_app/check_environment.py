"""Refuse a Python environment that MONAI Label 0.8.5 cannot run in, naming the reason and the fix.

Run before the server starts (scripts/start_monailabel.sh) and by the set-up on an environment that already
exists (.ci/setup_monailabel.sh, with ``--conflicts``)::

    python monailabel_app/check_environment.py [--conflicts]

exits 0 when the environment is fit, else 2 with one line per problem. Why a check of its own, before the
server: with pydicom 3 in the environment (``pip install voxcause[dicom]`` brings it: the core's highdicom
needs pydicom 3), MONAI Label cannot even be imported — its /infer endpoint imports pydicom-seg 0.4.1, which
imports ``pydicom._storage_sopclass_uids``, a module pydicom 3 removed — so the app's code never runs and the
user sees a traceback from inside pydicom-seg. numpy 2 breaks MONAI Label 0.8.5 the same way.

``--conflicts`` reports only what a set-up must not silently undo (pydicom 3, numpy 2: something installed
them on purpose), not what it installs anyway (a missing monailabel). Only package metadata is read; nothing
is imported, so the check works in an environment too broken to import MONAI Label.
"""

from __future__ import annotations

import importlib.metadata as metadata
import sys
from collections.abc import Callable

#: (package, is the installed version acceptable, why not, the fix) — the packages MONAI Label 0.8.5 pins.
CONFLICTS: tuple[tuple[str, Callable[[str], bool], str, str], ...] = (
    ("pydicom", lambda version: int(version.split(".")[0]) < 3,
     "MONAI Label 0.8.5 imports pydicom-seg, which needs a module pydicom 3 removed (pydicom._storage_sopclass_uids)",
     "install voxcause[dicom] (highdicom, pydicom 3) in another environment, not beside monailabel; here run "
     "pip install 'pydicom<3' 'highdicom==0.22.0'"),
    ("numpy", lambda version: int(version.split(".")[0]) < 2,
     "MONAI Label 0.8.5 and its pinned dependencies are built for numpy 1",
     "pip install 'numpy<2' in this environment"),
)
REQUIRED = (("monailabel", "0.8.5"),)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def problems(*, conflicts_only: bool = False) -> list[str]:
    """One line per reason this environment cannot run the app's MONAI Label server (empty when it can)."""
    found = []
    for name, acceptable, why, fix in CONFLICTS:
        version = _version(name)
        if version is not None and not acceptable(version):
            found.append(f"{name} {version} is installed in {sys.prefix}: {why} — {fix}")
    if not conflicts_only:
        for name, wanted in REQUIRED:
            version = _version(name)
            if version != wanted:
                state = "is not installed" if version is None else f"is {version}"
                found.append(f"{name} {state} in {sys.prefix}; the app needs {name} {wanted} — run "
                             "bash scripts/setup_monailabel.sh")
    return found


def main(argv: list[str]) -> int:
    found = problems(conflicts_only="--conflicts" in argv)
    for line in found:
        print(f"MONAI Label environment refused: {line}", file=sys.stderr)
    return 2 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
