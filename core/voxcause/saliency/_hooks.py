"""Hooks as context managers: attached for one call, removed in ``finally``, model mode restored.

MONAI's CAM classes register hooks for the lifetime of the object and switch ``inplace`` off on the user's
model; here nothing outlives the ``with`` block, even when the forward or backward pass raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class LayerRecord:
    """What a hooked layer saw during one forward/backward: its output and the gradient w.r.t. it."""

    def __init__(self) -> None:
        self.activation: torch.Tensor | None = None
        self.gradient: torch.Tensor | None = None


@contextmanager
def eval_mode(network: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode for the block and restore each one's own mode afterwards."""
    modes = [(module, module.training) for module in network.modules()]
    try:
        network.eval()
        yield network
    finally:
        for module, training in modes:
            module.train(training)


@contextmanager
def record_layer(layer: nn.Module, *, gradients: bool = True) -> Iterator[LayerRecord]:
    """Record ``layer``'s output (and, with ``gradients``, d target / d output) while the block runs.

    The gradient is captured with a tensor hook on the output rather than a module backward hook, which
    breaks on layers whose outputs are modified in place downstream.
    """
    record = LayerRecord()

    def forward_hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        if isinstance(output, (tuple, list)):
            output = output[0]
        record.activation = output
        if gradients and output.requires_grad:

            def grad_hook(grad: torch.Tensor) -> None:
                record.gradient = grad

            output.register_hook(grad_hook)

    handle = layer.register_forward_hook(forward_hook)
    try:
        yield record
    finally:
        handle.remove()


def hook_count(network: nn.Module) -> int:
    """Number of forward/backward hooks attached anywhere in ``network`` (tests use it to prove none stay)."""
    total = 0
    for module in network.modules():
        total += len(module._forward_hooks) + len(module._forward_pre_hooks) + len(module._backward_hooks)
        total += len(getattr(module, "_backward_pre_hooks", {}))
    return total
