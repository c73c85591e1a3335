"""`Model`: what an explainer needs of a model, and `as_model`, which gives a bare ``nn.Module`` that shape.

Every method needs the same few things: the raw head output (for gradients), probabilities in batches (for
perturbation scores), a forward-pass counter (the cost every method reports), the device and batch size, and
for layer methods the eager network (for hooks). `LoadedModel` provides them; a bare module is wrapped in a
`LoadedModel` with an empty card (softmax for C > 1, sigmoid for one logit), so tests and research scripts
call every explainer, the causal ones included, on a plain ``nn.Module``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from ..errors import ErrorCode, InputError
from .card import ModelCard
from .loaded import LoadedModel


@runtime_checkable
class Model(Protocol):
    """The model an explainer scores (`LoadedModel` and its nnU-Net subclass implement it).

    Attributes:
        network: the eager ``nn.Module`` behind the model, or None (TorchScript, ONNX).
        device: where inputs go (``"cpu"``, ``"cuda"``, ``"cuda:N"``).
        batch_size: inputs per forward call of `predict`.
        forward_passes: samples forwarded so far (the explainer base reads the difference).
        forward_seconds: seconds spent in forward calls so far.
    """

    network: nn.Module | None
    device: str
    batch_size: int
    forward_passes: int
    forward_seconds: float

    def forward_raw(self, inputs: torch.Tensor) -> torch.Tensor:
        """Raw output (logits) of the explained head for (B, C, *S); differentiable for eager networks."""
        ...

    def predict(
        self,
        inputs: torch.Tensor,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
        *,
        box: tuple[slice, ...] | None = None,
    ) -> torch.Tensor:
        """Probabilities for (B, C, *S) in chunks of ``batch_size``, each chunk reduced by ``reduce`` if given;
        with ``box`` (spatial slices) only inside it, (B, K, *box) — a region target reads no more."""
        ...


def as_model(model: Any) -> Model:
    """``model`` itself when it is a `Model`; a bare ``nn.Module`` wrapped in a `LoadedModel`."""
    if isinstance(model, Model):
        return model
    if isinstance(model, nn.Module):
        device = str(next((p.device for p in model.parameters()), torch.device("cpu")))
        eager = None if isinstance(model, torch.jit.ScriptModule) else model
        return LoadedModel(model, ModelCard(name=type(model).__name__), network=eager, device=device)
    raise InputError(
        f"cannot explain a {type(model).__name__}: pass a model from voxcause.load_model(...) or a torch nn.Module"
    )


def eager_network(model: Model, method: str) -> nn.Module:
    """The eager network behind ``model``, or an InputError naming the methods that work without one."""
    network = getattr(model, "network", None)
    if not isinstance(network, nn.Module) or isinstance(network, torch.jit.ScriptModule):
        raise InputError(
            f"method {method!r} needs an eager PyTorch network with named layers and gradients, but this model is "
            "TorchScript/ONNX: use --method rex or --method occlusion, or load a model card that names the network",
            code=ErrorCode.NEEDS_NETWORK,
        )
    return network
