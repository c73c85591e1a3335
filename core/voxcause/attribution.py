"""The explainer contract: one base class every method derives from, in the manner of Captum's ``Attribution``.

A method declares what it is and what it takes; the base owns everything the methods used to copy:

* ``name`` (the registry name) and ``options``: the method's frozen `voxcause.options.Options` dataclass,
  whose fields declare each option's default, help, choices and bounds once. The base builds it from the
  constructor's keywords (an unknown name, a value outside the bounds or the choices is an `InputError` with
  code ``bad_option``) and sets every field as an attribute. ``voxcause.explain``, the command line, the
  benchmark, the Slicer module and the MONAI Label catalogue read ``options.declared()``. Options declared
  ``supplied=True`` (``seed``, ``spacing``, ``context``) are filled in by ``voxcause.explain`` itself.
* :meth:`Explainer.attribute` — the one verb: checks the input (``(1, C, *spatial)``, 2 or 3 spatial
  axes), checks the typed :data:`voxcause.targets.Target` (an empty region is bad input), times the call,
  counts passes one way (forward: the samples the model itself counted; backward: :meth:`count_backward`),
  then runs the method's :meth:`Explainer._attribute` and says when the map is flat or degenerate
  (``stats["warnings"]``, which reaches ``summary.json``).
* :meth:`Explainer.params` — every declared option's value, recorded in ``summary.json``.

A new method is one class (one file)::

    @dataclass(frozen=True)
    class MineOptions(Options):
        cell: int = option(8, "region size in voxels", minimum=1)
        seed: int = seed_option()

    class MyMethod(Explainer):
        name = "mine"
        options = MineOptions

        def _attribute(self, inputs, target, progress) -> Attribution:
            ...  # self.cell, self.seed; a (*spatial) float32 map, higher = more responsible

and one line in ``voxcause.explainers.METHODS``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch

from .errors import InputError
from .explanation import Attribution
from .models.protocol import Model, as_model, eager_network
from .options import Options
from .removal import REMOVALS
from .typing import Progress, Target

# One vocabulary of "what removed means" for every method (core, CLI, Slicer, MONAI Label). The causal engine
# accepts all of them as ``occlusion``; the perturbation saliency methods (occlusion, Score-CAM, dea) take the
# ones that do not need a search (every name but ``auto``) as ``baseline``. ``zero`` is ``constant`` with value 0.
# The names are `voxcause.removal.REMOVALS` (their meaning is written there, once).
OCCLUSIONS: tuple[str, ...] = ("auto", *(name for name in REMOVALS if name != "zero"))
BASELINES: tuple[str, ...] = tuple(name for name in REMOVALS if name != "context")


class Explainer:
    """Base of every explainer: the preamble, timing, pass counting, degenerate-map warnings and ``params()``.

    Subclasses set ``name`` and ``options`` (their `Options` dataclass) and implement :meth:`_attribute`; one
    that builds parts from its options overrides ``__init__`` and calls ``super().__init__(model, **options)``
    first. Set ``needs_network = True`` for methods that hook layers or need gradients (the
    model must then be an eager PyTorch network; TorchScript/ONNX models are refused with a message naming
    the methods that work without one).

    Args:
        model: a `voxcause.models.Model` (``load_model``'s `LoadedModel`) or a plain ``nn.Module`` (wrapped by
            `voxcause.models.as_model`).
        **options: the method's options, by the names its ``options`` dataclass declares.
    """

    name: ClassVar[str] = "explainer"
    options: ClassVar[type[Options]] = Options
    needs_network: ClassVar[bool] = False

    def __init__(self, model: Model | torch.nn.Module, **options: Any) -> None:
        for name, value in self.options.build(self.name, options).values().items():
            setattr(self, name, value)
        self.model = as_model(model)
        self.network = eager_network(self.model, self.name) if self.needs_network else getattr(model, "network", None)
        self.backward_passes = 0

    # -- the declared options ------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """Every declared option's value (what ``summary.json`` records as ``params``); tensors are left out."""
        values = {}
        for option in self.options.declared():
            value = getattr(self, option.name, option.default)
            if isinstance(value, torch.Tensor):
                value = f"tensor{tuple(value.shape)}"
            elif isinstance(value, tuple):
                value = list(value)
            values[option.name] = value
        return values

    # -- the one verb ----------------------------------------------------------------------------------------
    def attribute(self, inputs: torch.Tensor, *, target: Target, progress: Progress | None = None) -> Attribution:
        """Explain ``target`` on ``inputs``.

        Args:
            inputs: (1, C, H, W) or (1, C, D, H, W) normalised image on the model grid (``LoadedModel.prepare``).
            target: a :data:`voxcause.targets.Target` (``resolve_target``): a class, or a class in a region.
            progress: optional ``callback(stage, fraction)``; the last call has fraction 1.0.

        Returns:
            `Attribution`: ``map`` (*spatial) float32 on the model grid, higher = more responsible, never
            flipped; ``stats`` with ``forward_passes``, ``backward_passes``, ``seconds`` and ``warnings``.
        """
        inputs = check_inputs(inputs)
        check_target(target)
        self.backward_passes = 0
        cost: dict[str, Any] = {}
        with metered(self.model, cost):
            result = self._attribute(inputs, target, progress)
        self._fill_stats(result, cost)
        report(progress, f"{self.name}: done", 1.0)
        return result

    def _fill_stats(self, result: Attribution, cost: dict[str, Any]) -> None:
        """Fill ``result.stats`` with the run's ``cost`` (`metered`), the backward passes, the warnings (the
        method's and `degenerate`'s) and ``details['method']``."""
        stats = result.stats
        warnings = list(stats.pop("warnings", []))
        if "warning" in stats:  # a method's single warning joins the list that reaches summary.json
            warnings.append(stats.pop("warning"))
        problem = degenerate(result.map)
        if problem:
            warnings.append(f"{self.name}: {problem}")
        stats.update(cost, backward_passes=self.backward_passes, warnings=warnings)
        stats["degenerate"] = problem is not None
        result.details.setdefault("method", self.name)

    def count_backward(self, n: int = 1) -> None:
        """Record ``n`` backward passes (forward passes are counted by the model)."""
        self.backward_passes += int(n)

    def _attribute(self, inputs: torch.Tensor, target: Target, progress: Progress | None) -> Attribution:
        """The method itself: inputs are checked (1, C, *spatial) float32; return the raw `Attribution`."""
        raise NotImplementedError


@contextmanager
def metered(model: Model, cost: dict[str, Any], *, since: float | None = None) -> Iterator[None]:
    """Write what the block cost into ``cost``: ``forward_passes`` (images the model scored: its own counter),
    ``seconds`` (wall clock, from ``since`` when given) and, for a sliding-window model, ``window_passes``.

    The one writer of these numbers: `Explainer.attribute` meters a method, `voxcause.explain` the whole run
    (target, method, certificate).
    """
    started = time.perf_counter() if since is None else since
    passes, windows = int(model.forward_passes), int(getattr(model, "window_passes", 0))
    yield
    cost["forward_passes"] = int(model.forward_passes) - passes
    cost["seconds"] = time.perf_counter() - started
    if getattr(model, "sliding_window", None) is not None:
        cost["window_passes"] = int(model.window_passes) - windows


# -- the preamble's pieces (also usable on their own) -----------------------------------------------------------
def check_inputs(inputs: torch.Tensor) -> torch.Tensor:
    """Accept (1, C, *spatial) with 2 or 3 spatial axes; return it as float32."""
    if not isinstance(inputs, torch.Tensor):
        raise InputError(f"inputs must be a torch.Tensor (1, C, *spatial), got {type(inputs).__name__}")
    if inputs.dim() not in (4, 5) or inputs.shape[0] != 1:
        raise InputError(
            f"inputs must be shaped (1, C, H, W) or (1, C, D, H, W), got {tuple(inputs.shape)}: "
            "explain one image at a time"
        )
    return inputs.float()


def check_target(target: Target) -> torch.Tensor | None:
    """The target's region mask (bool, *spatial) or None; a missing target or an empty region is bad input."""
    if target is None or not hasattr(target, "score"):
        raise InputError(
            "target must be a voxcause.targets.ClassTarget or RegionTarget (use voxcause.resolve_target)"
        )
    region = getattr(target, "region", None)
    if region is None:
        return None
    region = torch.as_tensor(region).bool()
    if not bool(region.any()):
        raise InputError(
            "the target region is empty (no voxel of the class is predicted or given): pass --region with a "
            "non-empty mask, or choose a --target the model predicts"
        )
    return region


def report(progress: Progress | None, stage: str, fraction: float) -> None:
    """Send one progress event if the caller asked for them."""
    if progress is not None:
        progress(stage, float(min(max(fraction, 0.0), 1.0)))


# A map whose positive part is this small a share of its own largest magnitude, or whose values span less than
# this share of the largest magnitude, carries no ranking.
FLAT_RELATIVE = 1e-6


def degenerate(amap: torch.Tensor) -> str | None:
    """Why ``amap`` cannot rank voxels (non-finite, empty, constant, nothing positive), or None when it can.

    The check is scale-free: a map of 1e-9 everywhere but on the cause still ranks; a map whose values are
    all equal (all-zero included) or all <= 0 does not.
    """
    values = torch.as_tensor(amap).detach().double()
    if values.numel() == 0:
        return "empty map"
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        return f"degenerate map: {int((~finite).sum())} non-finite voxels"
    high, low = float(values.max()), float(values.min())
    scale = max(abs(high), abs(low))
    if scale == 0:
        return "flat map: every voxel is 0 (no evidence at all; try another layer or method)"
    if high - low <= FLAT_RELATIVE * scale:
        return f"flat map: every voxel is {high:.3g} (it ranks nothing)"
    if high <= 0:
        return "degenerate map: no voxel has positive evidence (try another layer or method)"
    return None


__all__ = ["BASELINES", "OCCLUSIONS", "Explainer", "check_inputs", "check_target", "degenerate", "metered", "report"]
