"""The base of the CAM family: one forward/backward through a hooked layer, then a method-specific weighting.

Subclasses implement :meth:`CAMBase.weigh` (activations, gradients -> per-channel or per-voxel weights).
The target's ``logit_score`` is differentiated, so a class target uses the class logit and a region
target the *sum* of the class logits over the region (Seg-Grad-CAM).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ..errors import InputError
from ._attribution import Attribution
from ._common import Progress, check_inputs, report, target_region, upsample
from ._hooks import eval_mode, record_layer
from ._layers import choose_layer, get_layer
from ._model import PassCounter, as_model, eager_network


class CAMBase:
    """Shared machinery of Grad-CAM-style explainers.

    Args:
        model: a ``LoadedModel`` (eager network) or a plain ``nn.Module`` (wrapped with softmax).
        layer: module name to compute the CAM at; default: the deepest convolution keeping >= 1/8 of the
            input resolution per axis (segmenters: excluding the prediction head). Reported in ``stats``.
        min_fraction: the resolution floor of the automatic choice (default 1/8).
    """

    name = "cam"

    def __init__(
        self, model: Any, *, layer: str | None = None, min_fraction: float = 1 / 8
    ) -> None:
        self.model = as_model(model)
        self.network = eager_network(self.model, self.name)
        self.layer = layer
        self.min_fraction = float(min_fraction)
        self.passes = PassCounter()
        if layer is not None:
            get_layer(self.network, layer)

    def _forward_raw(self, x: torch.Tensor) -> torch.Tensor:
        """Raw model output, counting the samples forwarded."""
        self.passes.forward += int(x.shape[0])
        return self.model.forward_raw(x)

    def _layer_for(self, inputs: torch.Tensor) -> tuple[str, bool]:
        """The layer name to hook, and whether it was chosen automatically."""
        if self.layer is not None:
            return self.layer, False
        name, _shape = choose_layer(self.network, self._forward_raw, inputs, min_fraction=self.min_fraction)
        return name, True

    def weigh(self, activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        """Return weights broadcastable against ``activation`` (B, K, *s)."""
        raise NotImplementedError

    def cam_at_layer(self, inputs: torch.Tensor, target: Any, layer_name: str) -> tuple[torch.Tensor, dict]:
        """ReLU(sum_k w_k A_k) at ``layer_name``, upsampled to the input grid: (B, 1, *spatial), plus info."""
        layer = get_layer(self.network, layer_name)
        with eval_mode(self.network), torch.enable_grad(), record_layer(layer) as rec:
            x = inputs.detach().clone().requires_grad_(True)
            raw = self._forward_raw(x)
            score = target.logit_score(raw)
            if rec.activation is None:
                raise InputError(
                    f"layer {layer_name!r} was not used by the forward pass: pass another --layer"
                )
            if not rec.activation.requires_grad:
                raise InputError(
                    f"no gradient flows to layer {layer_name!r}: use --method occlusion or rex for this model"
                )
            score.sum().backward()
            self.passes.backward += 1
            activation = rec.activation.detach()
            gradient = rec.gradient
        if gradient is None:
            gradient = torch.zeros_like(activation)
        gradient = gradient.detach()
        weights = self.weigh(activation, gradient)
        cam = torch.relu((weights * activation).sum(dim=1, keepdim=True))
        info = {"layer_shape": list(activation.shape[2:]), "logit_score": float(score.detach().sum())}
        return upsample(cam, tuple(inputs.shape[2:])), info

    def attribute(self, inputs: torch.Tensor, *, target: Any, progress: Progress = None) -> Attribution:
        """Explain ``target`` on ``inputs`` (1, C, *spatial) with one forward and one backward pass.

        Returns:
            Attribution whose ``map`` is (*spatial) float32 on the model grid, >= 0, never flipped.
        """
        inputs = check_inputs(inputs)
        target_region(target)
        start = time.perf_counter()
        self.passes = PassCounter()
        report(progress, f"{self.name}: forward/backward", 0.0)
        layer_name, automatic = self._layer_for(inputs)
        cam, info = self.cam_at_layer(inputs, target, layer_name)
        report(progress, f"{self.name}: done", 1.0)
        cam_map = cam[0, 0].float().contiguous()
        stats = {
            "layer": layer_name,
            "layer_automatic": automatic,
            "layer_shape": info["layer_shape"],
            **self.passes.as_stats(),
            "seconds": time.perf_counter() - start,
        }
        if float(cam_map.max()) <= 0:
            stats["warning"] = "all-zero map: no positive evidence at this layer (try another --layer)"
        return Attribution(map=cam_map, masks={}, stats=stats, details={"method": self.name})
