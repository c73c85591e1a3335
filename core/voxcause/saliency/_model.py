"""A small adapter so explainers accept a ``LoadedModel`` or a plain eager ``nn.Module``.

Every method needs the same three things: the raw head output (for gradients), probabilities (for
perturbation scores) and the eager network (for hooks). ``LoadedModel`` provides them; a bare module is
wrapped with an activation so tests and research scripts can call the explainers without a model card.
The adapter counts the samples it forwards (``forward_passes``), as ``LoadedModel`` does: the explainer base
reads that counter, so passes are counted one way for every method.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import InputError


class ModuleModel:
    """Wrap an eager ``nn.Module`` so it looks like a ``LoadedModel`` to the explainers.

    Args:
        network: eager module taking (B, C, *spatial).
        activation: ``"softmax"`` (over dim 1), ``"sigmoid"`` or ``"none"``; applied by :meth:`predict`.
        task: ``"classification"`` or ``"segmentation"``; only used for layer choice and messages.
    """

    def __init__(self, network: nn.Module, *, activation: str = "softmax", task: str | None = None) -> None:
        if activation not in ("softmax", "sigmoid", "none"):
            raise InputError(f"unknown activation {activation!r}: use softmax, sigmoid or none")
        self.network = network
        self.activation = activation
        self.task = task
        self.forward_passes = 0
        self.device = next((p.device for p in network.parameters()), torch.device("cpu"))

    def forward_raw(self, x: torch.Tensor) -> torch.Tensor:
        """Raw output (logits) of the network; differentiable."""
        self.forward_passes += int(x.shape[0])
        return self.network(x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities: the activation applied to :meth:`forward_raw`."""
        return activate(self.forward_raw(x), self.activation)


def activate(raw: torch.Tensor, activation: str) -> torch.Tensor:
    """Apply a model card's output activation to raw logits (softmax over the class axis 1)."""
    if activation == "softmax":
        return torch.softmax(raw, dim=1)
    if activation == "sigmoid":
        return torch.sigmoid(raw)
    return raw


def as_model(model: Any) -> Any:
    """Return ``model`` if it already offers ``forward_raw``/``predict``; wrap a bare ``nn.Module``."""
    if hasattr(model, "forward_raw") and hasattr(model, "predict"):
        return model
    if isinstance(model, nn.Module):
        return ModuleModel(model)
    raise InputError(
        f"cannot explain a {type(model).__name__}: pass a model from voxcause.load_model(...) or a torch nn.Module"
    )


def eager_network(model: Any, method: str) -> nn.Module:
    """The eager network behind ``model``, or an InputError naming the methods that work without one."""
    network = getattr(model, "network", None)
    if not isinstance(network, nn.Module) or isinstance(network, torch.jit.ScriptModule):
        raise InputError(
            f"method {method!r} needs an eager PyTorch network with named layers and gradients, but this model is "
            "TorchScript/ONNX: use --method rex or --method occlusion, or load a model card that names the network"
        )
    return network
