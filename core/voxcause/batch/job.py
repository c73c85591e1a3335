"""What a batch does to every case: the command and its settings, shared by all rows.

`Job` travels to every worker (a local process or a Dask worker), so it holds plain values only. Its
`settings` are the part that changes results and therefore enters each case's content hash; ``threads`` and
the output folder do not (they change speed, not the answer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..explainers import DEFAULT_METHOD
from .manifest import Case

COMMAND_NAMES = ("explain", "counterfactual", "findings")


@dataclass(frozen=True)
class Job:
    """Settings applied to every case of a batch.

    Attributes:
        command: ``explain``, ``counterfactual`` or ``findings`` (explain, then map the result to regions).
        method: explanation method for ``explain`` / ``findings`` (``rex``, ``gradcam``, ...).
        seed: random seed passed to the method, so a batch is reproducible case by case.
        device: ``cpu`` or ``cuda`` / ``cuda:N``; on Dask, a CUDA job asks each task for one ``GPU`` resource.
        options: method options passed through to `voxcause.explain` (e.g. ``{"iterations": 10}``).
        model_options: options for `voxcause.load_model` when the model is a bare file (``task``, ``labels``,
            ``spatial_size``, ``normalize``).
        command_options: options for the command itself (e.g. ``{"atlas": "harvard-oxford"}`` for findings).
        threads: torch CPU threads per worker; None leaves torch's default. Not part of the hash.
    """

    command: str = "explain"
    method: str = DEFAULT_METHOD
    seed: int = 0
    device: str = "cpu"
    options: Mapping[str, Any] = field(default_factory=dict)
    model_options: Mapping[str, Any] = field(default_factory=dict)
    command_options: Mapping[str, Any] = field(default_factory=dict)
    threads: int | None = None

    def settings(self, case: Case) -> dict[str, Any]:
        """The settings of ``case`` that change its result (hashed with the input bytes)."""
        from .._version import __version__

        return {
            "command": self.command,
            "method": self.method,
            "seed": self.seed,
            "device": self.device,
            "target": case.target,
            "options": dict(self.options),
            "model_options": dict(self.model_options),
            "command_options": dict(self.command_options),
            "version": __version__,
        }
