"""Which classes a model card may name: a card is data, never a way to run code.

A card's ``network`` is ``{"_target_": "package.Class", **kwargs}`` (the MONAI bundle convention). Cards
travel by e-mail and arrive from other labs, so ``_target_`` is checked against an allowlist *before* anything
is imported or called: it must be a dotted name inside a trusted package (torch, MONAI's networks, voxcause,
or packages the user names with ``--trust-module PKG`` or the ``VOXCAUSE_TRUST_MODULES`` environment variable,
comma-separated), and, once imported from there, an ``nn.Module`` subclass defined there. Every nested
``_target_`` (in keyword values, lists, mappings) is checked the same way before the first one is built.
``os.system``, ``subprocess.run``, ``builtins.eval`` or a function of a trusted package are refused.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from ..errors import InputError

#: Packages whose nn.Module classes every card may build.
DEFAULT_TRUSTED = ("torch", "monai.networks", "voxcause")
#: Extra trusted packages, comma-separated (``--trust-module`` adds to it so batch workers inherit them).
TRUST_ENV = "VOXCAUSE_TRUST_MODULES"
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def trusted_packages() -> tuple[str, ...]:
    """The defaults plus the packages named in ``VOXCAUSE_TRUST_MODULES``."""
    extra = [name.strip() for name in os.environ.get(TRUST_ENV, "").split(",") if name.strip()]
    return DEFAULT_TRUSTED + tuple(extra)


def trust_modules(names: Iterable[str]) -> None:
    """Trust ``names`` (packages whose nn.Module classes cards may build) for this process and its workers."""
    added = [name.strip() for name in names if name and name.strip()]
    for name in added:
        if not _DOTTED.match(name):
            raise InputError(f"--trust-module {name!r} is not a package name — e.g. --trust-module mylab.nets")
    current = [name for name in os.environ.get(TRUST_ENV, "").split(",") if name.strip()]
    os.environ[TRUST_ENV] = ",".join(dict.fromkeys(current + added))


def _inside(module: str, packages: Iterable[str]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def targets(spec: Any) -> Iterator[str]:
    """Every ``_target_`` value in a nested card structure (mappings and lists), outermost first."""
    if isinstance(spec, dict):
        if "_target_" in spec:
            yield spec["_target_"]
        for key, value in spec.items():
            if key != "_target_":
                yield from targets(value)
    elif isinstance(spec, list | tuple):
        for item in spec:
            yield from targets(item)


def check_target_name(target: Any, where: str = "") -> None:
    """Refuse a ``_target_`` outside the trusted packages, by its name alone (nothing imported yet)."""
    packages = trusted_packages()
    name = target if isinstance(target, str) else repr(target)
    module, _, _ = name.rpartition(".")
    if not isinstance(target, str) or not _DOTTED.match(target) or not module or not _inside(module, packages):
        raise InputError(
            f"card{where} names _target_ {name[:120]!r}, which is not a network class of a trusted package "
            f"({', '.join(packages)}) — a card is data and may only build nn.Module classes; if you trust that "
            "package's code, pass --trust-module PACKAGE (or set VOXCAUSE_TRUST_MODULES)"
        )


def check_card_targets(spec: Any, where: str = "") -> None:
    """Check every (nested) ``_target_`` of a card's ``network`` by name; raises InputError on the first bad one."""
    if spec is not None and not isinstance(spec, dict):
        raise InputError(f"the card's 'network'{where} must be a mapping with '_target_' — e.g. "
                         "{\"_target_\": \"monai.networks.nets.DenseNet121\", ...}")
    for target in targets(spec):
        check_target_name(target, where)


def trusted_class(target: str, where: str = "") -> type[torch.nn.Module]:
    """Import a checked ``_target_`` and return it only if it is an nn.Module subclass defined in a trusted package."""
    check_target_name(target, where)
    module_name, _, class_name = target.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        raise InputError(f"network class {target} cannot be imported — install its package (e.g. monai)") from None
    if not (
        isinstance(found, type)
        and issubclass(found, torch.nn.Module)
        and _inside(getattr(found, "__module__", ""), trusted_packages())
    ):
        raise InputError(
            f"card{where} names _target_ {target!r}, which is not an nn.Module class — a card may only build "
            "network classes (e.g. monai.networks.nets.DenseNet121)"
        )
    return found


def build(spec: dict, where: str = "") -> torch.nn.Module:
    """Build ``{"_target_": "package.Class", **kwargs}`` after checking every nested target (nothing runs first)."""
    check_card_targets(spec, where)
    if "_target_" not in spec:
        raise InputError(
            "the card's 'network' has no '_target_' — name the class, e.g. monai.networks.nets.DenseNet121"
        )
    return _build(spec, where)


def _build(spec: Any, where: str) -> Any:
    if isinstance(spec, list):
        return [_build(item, where) for item in spec]
    if not isinstance(spec, dict):
        return spec
    kwargs = {key: _build(value, where) for key, value in spec.items() if key != "_target_"}
    if "_target_" not in spec:
        return kwargs
    target = spec["_target_"]
    cls = trusted_class(target, where)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise InputError(f"cannot build {target}: {first} — fix the card's network arguments") from None


#: Set to 1 to load checkpoints that only a full unpickler reads (a pickle runs code: only for files you trust).
TRUST_PICKLES_ENV = "VOXCAUSE_TRUST_PICKLES"


def _numpy_scalars() -> list:
    """The numpy globals a training checkpoint's logged numbers pickle as (scalar, dtype and its classes), under
    both numpy 1 and numpy 2 module names; none of them runs code when unpickled."""
    import numpy as np
    from numpy._core.multiarray import scalar  # numpy 2; numpy 1.26 forwards it (its shim for numpy 2 pickles)

    allowed: list = [np.dtype, (scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar")]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [value for value in vars(dtypes).values() if isinstance(value, type) and issubclass(value, np.dtype)]
    return allowed


def refused_global(error: BaseException) -> str | None:
    """The global a weights-only unpickler refused (``posix.system``), or None when the file is no pickle at all."""
    found = re.search(r"GLOBAL ([\w.]+)", str(error))
    return found.group(1) if found else None


def load_checkpoint(path: str | os.PathLike, *, what: str = "checkpoint") -> Any:
    """``torch.load`` with the weights-only unpickler (tensors, containers, numbers, numpy scalars).

    nnU-Net checkpoints are pickles; the ones ``nnUNetv2_train`` writes load this way. A checkpoint that needs
    the full unpickler is refused unless ``VOXCAUSE_TRUST_PICKLES=1`` (then it is treated as the code it is).
    """
    if os.environ.get(TRUST_PICKLES_ENV) == "1":
        return torch.load(str(path), map_location="cpu", weights_only=False)
    import pickle

    try:
        with torch.serialization.safe_globals(_numpy_scalars()):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if refused_global(error):
            raise InputError(
                f"{what} {path} holds {refused_global(error)}, which a weights-only load refuses (a pickle can run "
                f"code) — load it only if you trust its source, with {TRUST_PICKLES_ENV}=1"
            ) from None
        raise InputError(f"{what} {path} is not a torch checkpoint (not a pickle) — check the file") from None
    except Exception as error:  # noqa: BLE001 - a non-checkpoint file fails as IndexError, EOFError, KeyError ...
        first = (str(error).strip().splitlines() or [""])[0][:160]
        raise InputError(
            f"{what} {path} is not a torch checkpoint ({type(error).__name__}: {first}) — check the file"
        ) from None
