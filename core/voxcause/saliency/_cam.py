"""The base of the CAM family: one forward/backward through a hooked layer, then a method-specific weighting.

Subclasses implement :meth:`CAMBase.weigh` (activations, gradients -> per-channel or per-voxel weights).
The target's ``logit_score`` is differentiated, so a class target uses the class logit and a region
target the *sum* of the class logits over the region (Seg-Grad-CAM). The layer is chosen from the graph
(``voxcause.saliency._layers``): for a segmenter the last decoder block before the head.
"""

from __future__ import annotations

import torch

from ..attribution import LAYER, Explainer, Option, Progress, report
from ..errors import InputError
from ..targets import Target
from ._attribution import Attribution
from ._common import upsample
from ._hooks import eval_mode, record_layer
from ._layers import choose_layer, get_layer

MIN_FRACTION = Option(
    "min_fraction", 1 / 8, "classifiers: the automatic layer keeps at least this share of the input resolution"
)
# A CAM whose positive part is below this share of what its terms could reach has cancelled out (e.g. a layer
# on a skip path whose channels the head reads with opposite signs): it is said, never returned silently.
CANCELLED = 1e-4


class CAMBase(Explainer):
    """Shared machinery of Grad-CAM-style explainers.

    Args:
        model: a ``LoadedModel`` (eager network) or a plain ``nn.Module`` (wrapped with softmax).
        layer: module name to compute the CAM at; default chosen from the graph (segmenters: the last
            decoder block before the head; classifiers: the deepest block keeping ``min_fraction`` of the
            input resolution per axis). Reported in ``stats["layer"]``.
        min_fraction: the resolution floor of the automatic choice for classifiers (default 1/8).
    """

    name = "cam"
    options = (LAYER, MIN_FRACTION)
    needs_network = True

    def __init__(self, model, *, layer: str | None = None, min_fraction: float = 1 / 8) -> None:
        super().__init__(model)
        self.layer = layer
        self.min_fraction = float(min_fraction)
        if layer is not None:
            get_layer(self.network, layer)

    def _layer_for(self, inputs: torch.Tensor) -> tuple[str, bool]:
        """The layer name to hook, and whether it was chosen automatically."""
        if self.layer is not None:
            return self.layer, False
        name, _shape = choose_layer(self.network, self.model.forward_raw, inputs, min_fraction=self.min_fraction)
        return name, True

    def weigh(self, activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        """Return weights broadcastable against ``activation`` (B, K, *s)."""
        raise NotImplementedError

    def cam_at_layer(self, inputs: torch.Tensor, target: Target, layer_name: str) -> tuple[torch.Tensor, dict]:
        """ReLU(sum_k w_k A_k) at ``layer_name``, upsampled to the input grid: (B, 1, *spatial), plus info."""
        layer = get_layer(self.network, layer_name)
        with eval_mode(self.network), torch.enable_grad(), record_layer(layer) as rec:
            x = inputs.detach().clone().requires_grad_(True)
            raw = self.model.forward_raw(x)
            score = target.logit_score(raw)
            if rec.activation is None:
                raise InputError(f"layer {layer_name!r} was not used by the forward pass: pass another --layer")
            if not rec.activation.requires_grad:
                raise InputError(
                    f"no gradient flows to layer {layer_name!r}: use --method occlusion or rex for this model"
                )
            score.sum().backward()
            self.count_backward()
            activation = rec.activation.detach()
            gradient = rec.gradient
        if gradient is None:
            gradient = torch.zeros_like(activation)
        gradient = gradient.detach()
        weights = self.weigh(activation, gradient)
        terms = weights * activation
        cam = torch.relu(terms.sum(dim=1, keepdim=True))
        reach = float(terms.abs().sum(dim=1).max())
        info = {
            "layer_shape": list(activation.shape[2:]),
            "logit_score": float(score.detach().sum()),
            "cancelled": reach > 0 and float(cam.max()) < CANCELLED * reach,
        }
        return upsample(cam, tuple(inputs.shape[2:])), info

    def _attribute(self, inputs: torch.Tensor, target: Target, progress: Progress) -> Attribution:
        report(progress, f"{self.name}: forward/backward", 0.0)
        layer_name, automatic = self._layer_for(inputs)
        cam, info = self.cam_at_layer(inputs, target, layer_name)
        cam_map = cam[0, 0].float().contiguous()
        stats = {
            "layer": layer_name,
            "layer_automatic": automatic,
            "layer_shape": info["layer_shape"],
            "warnings": [],
        }
        if info["cancelled"]:
            stats["warnings"].append(
                f"{self.name}: the map at layer {layer_name!r} cancels out (its positive part is under "
                f"{CANCELLED:g} of its terms): no positive evidence there — try another --layer (--layer list)"
            )
        return Attribution(map=cam_map, masks={}, stats=stats, details={"method": self.name})
