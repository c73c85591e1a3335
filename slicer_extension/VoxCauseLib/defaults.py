"""The core's own defaults, read from `voxcause methods --json`, so the panel never hard-codes them.

Why a process: the defaults are declared by the explainers in the core (`voxcause.explainers.catalogue`),
which imports torch; the panel must not import it (seconds, and it may not be installed yet). The panel starts
`CoreDefaultsReader` when it opens, polls it from a Qt timer, and names the defaults in its widgets (the
iterations box reads "Default (10)", the occlusion tooltip "'Core default' is auto"). Until it answers, or when it cannot (voxcause not installed yet), nothing is
lost: options left at their default are not sent at all (`command.build_command`), so a run always gets the
core's default.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .command import LAUNCHER
from .options import Device, Method, Occlusion
from .process import child_environment


@dataclasses.dataclass(frozen=True)
class CoreDefaults:
    """What the installed core declares: per method, its options' defaults and accepted values.

    Attributes:
        version: the core's version.
        options: ``{method: {option: default}}``.
        choices: ``{method: {option: (accepted, ...)}}`` for options that are a choice.
        needs_network: ``{method: bool}``: the method hooks layers (a card or bundle, not TorchScript/ONNX).
        unavailable: ``{method: reason}`` for methods whose code did not load in the core.
    """

    version: str = ""
    options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    choices: Mapping[str, Mapping[str, tuple[str, ...]]] = dataclasses.field(default_factory=dict)
    needs_network: Mapping[str, bool] = dataclasses.field(default_factory=dict)
    unavailable: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def default(self, method: Method | str, option: str) -> Any:
        """The core's default of ``option`` for ``method`` (None when the core does not declare it)."""
        name = method.value if isinstance(method, Method) else method
        return self.options.get(name, {}).get(option)

    @property
    def iterations(self) -> int | None:
        """Causal-search iterations the core runs by default."""
        value = self.default(Method.REX, "iterations")
        return int(value) if isinstance(value, int) else None

    @property
    def occlusion(self) -> Occlusion | None:
        """The core's default occlusion as the panel's enum (None when the panel has no such choice)."""
        try:
            return Occlusion(self.default(Method.REX, "occlusion"))
        except ValueError:
            return None

    def iterations_text(self) -> str:
        """Text of the iterations box at its 'core default' value, e.g. "Default (10)"."""
        return f"Default ({self.iterations})" if self.iterations is not None else "Default"



def parse_methods(text: str) -> CoreDefaults:
    """`CoreDefaults` from the text `voxcause methods --json` prints; ValueError (one line) when it is not that."""
    try:
        data = json.loads(text)
        methods = data["methods"]
        if not isinstance(methods, dict):
            raise TypeError("'methods' is not an object")
        options, choices, network, unavailable = {}, {}, {}, {}
        for name, entry in methods.items():
            if "error" in entry:
                unavailable[name] = str(entry["error"])
                continue
            options[name] = {o["name"]: o["default"] for o in entry["options"]}
            choices[name] = {o["name"]: tuple(o["choices"]) for o in entry["options"] if o.get("choices")}
            network[name] = bool(entry.get("needs_network", False))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"Not the output of `voxcause methods --json`: {exc}. Update voxcause.") from None
    return CoreDefaults(
        version=str(data.get("version", "")),
        options=options,
        choices=choices,
        needs_network=network,
        unavailable=unavailable,
    )


class CoreDefaultsReader:
    """Ask the installed core for its defaults without blocking: start, then `poll()` until it answers.

    Args:
        launcher: the program prefix, as for `command.build_command` (PythonSlicer inside Slicer); the command
            is ``[*launcher, "methods", "--json"]``.
    """

    def __init__(self, launcher: Sequence[str] | None = None) -> None:
        prefix = list(launcher) if launcher is not None else [sys.executable, "-c", LAUNCHER]
        self.command = [*prefix, "methods", "--json"]
        self.result: CoreDefaults | None = None
        self.error = ""
        self._process: subprocess.Popen | None = None

    def start(self) -> CoreDefaultsReader:
        try:  # the GPU is never needed to list methods: hide it, so no CUDA context is made
            self._process = subprocess.Popen(
                self.command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",  # what voxcause writes, whatever Slicer's locale
                errors="replace",
                env=child_environment(Device.CPU),
            )
        except OSError as exc:
            self.error = f"Cannot ask voxcause for its defaults: {exc}"
        return self

    def poll(self) -> bool:
        """True while the core is still answering; then `result` (or `error`) is set."""
        if self._process is None:
            return False
        if self._process.poll() is None:
            return True
        self._collect(self._process.communicate())
        return False

    def wait(self, timeout: float = 120.0) -> CoreDefaults | None:
        """Block until the core answers (scripts and tests); None when it cannot (see `error`)."""
        if self._process is None:
            self.start()
        if self._process is not None:
            try:
                self._collect(self._process.communicate(timeout=timeout))
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.communicate()
                self.error = f"voxcause did not list its methods within {timeout:.0f} s"
                self._process = None
        return self.result

    def _collect(self, output: tuple[str, str]) -> None:
        stdout, stderr = output
        returncode = self._process.returncode if self._process is not None else None
        self._process = None
        if returncode != 0:
            lines = [line for line in (stderr or "").splitlines() if line.strip()]
            self.error = f"voxcause methods failed (exit code {returncode}): {lines[-1] if lines else 'no message'}"
            return
        try:
            self.result = parse_methods(stdout)
        except ValueError as exc:
            self.error = str(exc)
