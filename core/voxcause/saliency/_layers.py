"""Which layer a CAM is computed at.

On small 3D networks the last block can be 3³ voxels: a CAM there is a blur that can peak outside the
lesion (DESIGN.md measured 6% of the mass on the cause at a DenseNet's last block, 12% at its first). The
automatic choice is therefore the *deepest convolution whose output keeps at least 1/8 of the input's
resolution on every spatial axis*. For a segmenter the trailing convolutions that already output the classes
are the prediction head (a CAM there just reproduces the logit map), so they are skipped. The chosen name
goes into ``stats``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import InputError
from ._hooks import record_shapes

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def conv_layer_names(network: nn.Module) -> list[str]:
    """Names of the convolution modules of ``network`` (the candidates for a CAM layer)."""
    return [name for name, module in network.named_modules() if isinstance(module, CONV_TYPES) and name]


def get_layer(network: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name``, or an InputError listing the candidates."""
    modules = dict(network.named_modules())
    if name in modules and name:
        return modules[name]
    candidates = conv_layer_names(network) or [n for n in modules if n]
    shown = ", ".join(candidates[:40]) + (" ..." if len(candidates) > 40 else "")
    raise InputError(f"layer {name!r} is not in the network: pass --layer with one of: {shown}")


def choose_layer(
    network: nn.Module,
    forward: callable,
    inputs: torch.Tensor,
    *,
    min_fraction: float = 1 / 8,
    segmentation: bool | None = None,
) -> tuple[str, tuple[int, ...]]:
    """Pick the deepest convolution whose output has >= ``min_fraction`` of the input resolution per axis.

    Runs one forward pass (no gradients) with shape hooks on every convolution. ``segmentation`` None means
    "decide from the output": a spatial output marks a segmenter and its last convolution is skipped.

    Returns:
        (layer name, its output shape).
    """
    names = conv_layer_names(network)
    if not names:
        raise InputError(
            "the network has no convolution layer for a CAM: use --method occlusion or --method rex, "
            "or pass --layer with a module name"
        )
    spatial = tuple(inputs.shape[2:])
    with torch.no_grad(), record_shapes(network, names) as order:
        output = forward(inputs[:1])
    if segmentation is None:
        segmentation = output.dim() == inputs.dim()
    order = [(n, s) for n, s in order if len(s) == len(spatial) + 2]
    if segmentation:
        # The prediction head: trailing convolutions that already output the classes (e.g. a UNet's final
        # transposed conv and its residual unit). A CAM there only repeats the logit map.
        while order and order[-1][1][1] == output.shape[1]:
            order.pop()
    minimum = [max(1, math.ceil(size * min_fraction)) for size in spatial]
    chosen = None
    for name, shape in order:
        if all(got >= want for got, want in zip(shape[2:], minimum, strict=False)):
            chosen = (name, shape)
    if chosen is None:
        if not order:
            raise InputError(
                "no convolution produced a spatial output: pass --layer, or use --method occlusion"
            )
        chosen = max(order, key=lambda item: math.prod(item[1][2:]))
    return chosen
