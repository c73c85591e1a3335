"""Which layer a CAM is computed at: chosen from the network's *graph*, not from module order.

One forward pass with pre- and post-hooks on every module records when each module starts and ends and what
it outputs (:func:`trace_layers`). In an encoder–decoder the order of *definition* is not the order of
depth (a MONAI UNet defines its innermost block inside its top skip connection), but the order of
*execution* is: the decoder runs last.

* **Segmenters** (the output has the input's spatial rank): the *head* is the last convolution whose output
  has the final output's shape (channels = classes, full resolution). The CAM layer is the module that
  finished last before the head started and does not itself have the output's shape — the last decoder
  block, i.e. the feature map the head reads (Seg-Grad-CAM, Vinogradova et al. 2020) — provided it keeps at
  least half the input resolution on every axis; otherwise the last module that does. Reading the head's
  *input* matters: in a SegResNet the last decoder block is followed by GroupNorm + ReLU inside the head, and
  a normalisation over space makes every channel's spatially averaged gradient (Grad-CAM's weight) zero, so a
  CAM at the block itself is ~1e-9 everywhere; the normalised map is what the head reads (through a ReLU that is one module shared by the whole network,
  so it cannot be hooked).
* **Classifiers**: the deepest block (the last module to finish, among those that are not the whole network)
  whose output keeps at least ``min_fraction`` (1/8) of the input resolution on every axis. On small 3D
  networks the last block can be 1-3 voxels a side, whose CAM is a blur that peaks outside the lesion.

``--layer list`` prints :func:`layer_candidates`: every module with a spatial output, in execution order, with
its output shape and the automatic choice marked.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InputError

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


@dataclass
class Layer:
    """One module seen during a forward pass: ``shape`` (B, K, *s) of its output, ``start``/``end`` ticks."""

    name: str
    shape: tuple[int, ...]
    start: int
    end: int
    convolution: bool

    def describe(self) -> dict:
        return {"name": self.name, "shape": list(self.shape[1:])}


def conv_layer_names(network: nn.Module) -> list[str]:
    """Names of the convolution modules of ``network``."""
    return [name for name, module in network.named_modules() if isinstance(module, CONV_TYPES) and name]


def get_layer(network: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name``, or an InputError listing the candidates."""
    modules = dict(network.named_modules())
    if name in modules and name:
        return modules[name]
    candidates = conv_layer_names(network) or [n for n in modules if n]
    shown = ", ".join(candidates[:40]) + (" ..." if len(candidates) > 40 else "")
    raise InputError(f"layer {name!r} is not in the network: pass --layer with one of: {shown} (or --layer list)")


def trace_layers(
    network: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor
) -> tuple[list[Layer], torch.Tensor]:
    """Run ``forward(inputs[:1])`` once (no gradients) and record every module's span and output shape.

    Returns:
        (layers in the order they *finished*, the network's output). The root module is named ``""``.
    """
    tick = [0]
    starts: dict[str, int] = {}
    layers: list[Layer] = []
    handles = []
    try:
        for name, module in network.named_modules():

            def pre(_m: nn.Module, _i: object, name: str = name) -> None:
                starts.setdefault(name, tick[0])
                tick[0] += 1

            def post(m: nn.Module, _i: object, output: object, name: str = name) -> None:
                if isinstance(output, (tuple, list)) and output:
                    output = output[0]
                if isinstance(output, torch.Tensor):
                    layers.append(Layer(name, tuple(output.shape), starts.get(name, 0), tick[0],
                                        isinstance(m, CONV_TYPES)))
                tick[0] += 1

            handles.append(module.register_forward_pre_hook(pre))
            handles.append(module.register_forward_hook(post))
        with torch.no_grad():
            output = forward(inputs[:1])
    finally:
        for handle in handles:
            handle.remove()
    if isinstance(output, (tuple, list)):
        output = output[0]
    return layers, output


def _spatial(layers: list[Layer], nd: int) -> list[Layer]:
    """Modules called once with a (B, K, *s) output of the input's spatial rank.

    A module called several times (e.g. SegResNet's one shared activation ``act_mod``) cannot be hooked
    unambiguously, so it is never a candidate.
    """
    calls: dict[str, int] = {}
    for layer in layers:
        calls[layer.name] = calls.get(layer.name, 0) + 1
    return [layer for layer in layers if len(layer.shape) == nd + 2 and calls[layer.name] == 1]


def _enclosing(layers: list[Layer]) -> set[str]:
    """Modules that enclose the whole computation (the root and wrappers around everything)."""
    names = set()
    for layer in sorted(layers, key=lambda item: item.start):
        later = [other.end for other in layers if other.start > layer.start]
        if all(end <= layer.end for end in later):
            names.add(layer.name)
        else:
            break
    return names


def _keeps(layer: Layer, spatial: tuple[int, ...], fraction: float) -> bool:
    minimum = [max(1, math.ceil(size * fraction)) for size in spatial]
    return all(got >= want for got, want in zip(layer.shape[2:], minimum, strict=False))


def choose_from_trace(
    layers: list[Layer],
    output: torch.Tensor,
    spatial: tuple[int, ...],
    *,
    segmentation: bool,
    min_fraction: float = 1 / 8,
) -> Layer:
    """The automatic CAM layer from a trace (see the module docstring for the rule)."""
    nd = len(spatial)
    enclosing = _enclosing(layers)
    candidates = [layer for layer in _spatial(layers, nd) if layer.name not in enclosing]
    if not candidates:
        raise InputError("no layer produced a spatial output: pass --layer, or use --method occlusion or rex")
    if segmentation:
        final = tuple(output.shape[1:])
        head_convs = [layer for layer in candidates if layer.convolution and tuple(layer.shape[1:]) == final]
        heads = head_convs or [layer for layer in candidates if tuple(layer.shape[1:]) == final]
        if heads:
            head = max(heads, key=lambda layer: layer.end)
            before = [layer for layer in candidates if layer.end < head.start and tuple(layer.shape[1:]) != final]
        else:
            before = []
        before = before or [layer for layer in candidates if tuple(layer.shape[1:]) != final] or candidates
        for fraction in (1 / 2, min_fraction):
            kept = [layer for layer in before if _keeps(layer, spatial, fraction)]
            if kept:
                return max(kept, key=lambda layer: layer.end)
        return max(before, key=lambda layer: math.prod(layer.shape[2:]))
    kept = [layer for layer in candidates if _keeps(layer, spatial, min_fraction)]
    if kept:
        return max(kept, key=lambda layer: layer.end)
    return max(candidates, key=lambda layer: math.prod(layer.shape[2:]))


def stage_ends(
    layers: list[Layer], spatial: tuple[int, ...], *, finest: float = 1 / 4, coarsest: float = 1 / 8
) -> list[Layer]:
    """The last module of each resolution stage (a run of modules with one output size, in execution order)
    whose resolution lies between ``finest`` and ``coarsest`` of the input's on every axis."""
    enclosing = _enclosing(layers)
    ordered = sorted(
        (layer for layer in _spatial(layers, len(spatial)) if layer.name not in enclosing), key=lambda item: item.end
    )
    ends = []
    for index, layer in enumerate(ordered):
        last = index + 1 == len(ordered) or ordered[index + 1].shape[2:] != layer.shape[2:]
        within = _keeps(layer, spatial, coarsest) and all(
            got <= size * finest for got, size in zip(layer.shape[2:], spatial, strict=False)
        )
        if last and within:
            ends.append(layer)
    return ends


def automatic_layers(
    layers: list[Layer],
    output: torch.Tensor,
    spatial: tuple[int, ...],
    *,
    min_fraction: float = 1 / 4,
    multi_layer: bool = False,
) -> list[str]:
    """The CAM family's automatic layer(s) from a trace.

    Segmenters: the Seg-Grad-CAM layer (:func:`choose_from_trace`). Classifiers: the ends of the resolution
    stages from 1/2 down to ``min_fraction`` of the input resolution — all of them (``multi_layer``, LayerCAM)
    or the deepest; when the network has no such stage, the deepest module keeping ``min_fraction``.
    """
    segmentation = len(output.shape) == len(spatial) + 2
    if not segmentation:
        ends = stage_ends(layers, spatial, finest=1 / 2, coarsest=min_fraction)
        if ends:
            return [layer.name for layer in ends] if multi_layer else [ends[-1].name]
    return [choose_from_trace(layers, output, spatial, segmentation=segmentation, min_fraction=min_fraction).name]


def layer_candidates(
    network: nn.Module,
    forward: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    *,
    min_fraction: float = 1 / 4,
) -> list[dict]:
    """Every module with a spatial output, in execution order: ``{name, shape, convolution, automatic,
    layercam, candidate}`` (``automatic``: the graph rule's choice, Grad-CAM's; ``layercam``: one of LayerCAM's
    aggregated stages; ``candidate``: scored by the faithful choice, Grad-CAM++'s, which keeps one per image)."""
    layers, output = trace_layers(network, forward, inputs)
    spatial = tuple(inputs.shape[2:])
    chosen = automatic_layers(layers, output, spatial, min_fraction=min_fraction)
    candidates = set(faithful_candidates(layers, output, spatial, chosen[0], min_fraction=min_fraction))
    stages = set(automatic_layers(layers, output, spatial, min_fraction=min(min_fraction, 1 / 8), multi_layer=True))
    enclosing = _enclosing(layers)
    rows = []
    for layer in sorted(_spatial(layers, inputs.dim() - 2), key=lambda item: item.end):
        if layer.name in enclosing:
            continue
        rows.append(
            {
                "name": layer.name,
                "shape": list(layer.shape[1:]),
                "convolution": layer.convolution,
                "automatic": layer.name in chosen,
                "layercam": layer.name in stages,
                "candidate": layer.name in candidates,
            }
        )
    return rows


def faithful_candidates(
    layers: list[Layer], output: torch.Tensor, spatial: tuple[int, ...], chosen: str, *,
    min_fraction: float = 1 / 4, limit: int = 4,
) -> list[str]:
    """The layers a single-layer CAM is scored at (`_faithful.choose_layer`): the graph rule's ``chosen`` first,
    then the deepest ``limit - 1`` ends of resolution stages from full resolution down to ``min_fraction``. A
    segmenter's modules with the output's shape (its head: logits, whose CAM is the prediction itself) are not
    candidates."""
    segmentation = len(output.shape) == len(spatial) + 2
    final = tuple(output.shape[1:])
    ends = [layer.name for layer in stage_ends(layers, spatial, finest=1.0, coarsest=min_fraction)
            if not (segmentation and tuple(layer.shape[1:]) == final) and layer.name != chosen]
    return [chosen, *ends[::-1][: limit - 1]]
