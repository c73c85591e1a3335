"""Which Python packages the module still needs in Slicer's Python (installed on first use, with consent).

Only distribution metadata is read (no imports), so the check is instant even for torch. voxcause itself is on
no package index: it is installed from a wheel the extension ships (``Resources/wheels/voxcause-*.whl``) or from
the repository the module sits in (`own_package_source`); in Slicer's Python console that is one command,
``slicer.util.pip_install("/path/to/voxcause")``.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

OWN_PACKAGE = "voxcause"

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


def own_package_source(module_dir: str | Path) -> str | None:
    """Where voxcause installs from: the newest wheel in ``Resources/wheels`` beside the module, else the
    repository holding the module (a parent folder whose pyproject.toml names the voxcause project); None if
    neither exists."""
    folder = Path(module_dir).resolve()
    wheels = sorted((folder / "Resources" / "wheels").glob(f"{OWN_PACKAGE}-*.whl"))
    if wheels:
        return str(wheels[-1])
    for parent in folder.parents:
        project = parent / "pyproject.toml"
        if project.is_file() and re.search(rf'^name\s*=\s*"{OWN_PACKAGE}"', project.read_text(encoding="utf-8"), re.M):
            return str(parent)
    return None


def install_arguments(missing: list[str], module_dir: str | Path) -> list[str]:
    """pip arguments for the missing requirement lines: voxcause from `own_package_source`, the rest as listed.

    Raises:
        RuntimeError: voxcause is missing and the module has neither a wheel nor a repository to install it from.
    """
    arguments = []
    for line in missing:
        if requirement_name(line).lower() != OWN_PACKAGE:
            arguments.append(line)
            continue
        source = own_package_source(module_dir)
        if source is None:
            raise RuntimeError(
                "voxcause is on no package index: in Slicer's Python console run "
                'slicer.util.pip_install("/path/to/voxcause") with the folder of a voxcause checkout or its wheel'
            )
        arguments.append(source)
    return arguments
