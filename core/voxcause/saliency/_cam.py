"""The base of the CAM family: one forward/backward through a hooked layer, then a method-specific weighting.

Subclasses implement :meth:`CAMBase.weigh` (activations, gradients -> per-channel or per-voxel weights).
What is differentiated (``score``; ``"auto"``, the default, takes the log-odds for a region target or a
two-class model, whose softmax depends only on the difference of the two logits, and the logit otherwise):

* ``"log_odds"``: the target class's log-odds, log(p_c / (1 - p_c)). For a softmax model that is
  y_c - logsumexp_{k != c} y_k; for a sigmoid model the class logit itself. A softmax is unchanged by adding
  a constant to every logit, so the class logit alone is not what decides: the sample SegResNet draws its
  sphere by *lowering the background logit* (foreground logit -0.46 inside the sphere, -1.2 outside;
  background -3.1 vs +1.1), and Seg-Grad-CAM of the foreground logit is all zero there.
* ``"logit"``: the class logit y_c, as in the Grad-CAM and Seg-Grad-CAM papers (``target.logit_score``). For
  classifiers it measured better: on the sample 4-class ResNet (2 held-out patients) Grad-CAM of the logit
  points into the tumour in 2/2 cases (insertion AUC 0.92), of the log-odds in 1/2 (0.65, below random) —
  the log-odds gradient adds the evidence *against the other classes*, spread over the brain. On the
  two-class known-cause DenseNet121 the logit left one case at 0.01x uniform; its log-odds, 4.8x.

A region target sums the per-voxel score over its region (Seg-Grad-CAM). The layer is chosen from the graph
(``voxcause.saliency._layers``): for a segmenter the last decoder block before the head; with ``layer_rule``
``faithful`` (Grad-CAM++'s default) that layer and the deeper stage ends are scored against the model and the
one it agrees with is kept (``voxcause.saliency._faithful``).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

import torch

from ..attribution import Explainer, report
from ..errors import InputError
from ..explanation import Attribution
from ..options import Options, layer_option, option, seed_option
from ..typing import Progress, Target
from ._common import upsample
from ._faithful import choose_layer
from ._hooks import eval_mode, record_layer
from ._layers import automatic_layers, faithful_candidates, get_layer, trace_layers


def min_fraction_option(default: float):
    """The automatic layer's resolution floor (its default differs per method: deeper stages for some)."""
    return option(default, "classifiers: the automatic layer keeps at least this share of the input resolution",
                  minimum=0.0, maximum=1.0)


@dataclass(frozen=True)
class CAMOptions(Options):
    layer: str | None = layer_option()
    score: str = option("auto", "what is differentiated: auto (log-odds for segmenters and two-class models, else "
                        "the logit), log_odds or logit", choices=("auto", "log_odds", "logit"))
    min_fraction: float = min_fraction_option(1 / 4)


def layer_rule_option(default: str):
    """How a single-layer CAM's automatic layer is chosen (its default differs per method, see `_faithful`)."""
    return option(default, "how the automatic layer is chosen: faithful (of the graph rule's layer and the "
                  "deeper stage ends, the one whose map's top voxels keep the decision alone and lose it when "
                  "removed; 1 + 4 forward passes per candidate) or graph (the graph rule's layer)",
                  choices=("faithful", "graph"))


@dataclass(frozen=True)
class SingleLayerCAMOptions(CAMOptions):
    layer_rule: str = layer_rule_option("graph")
    seed: int = seed_option()


# A CAM whose positive part is below this share of what its terms could reach has cancelled out (e.g. a layer
# on a skip path whose channels the head reads with opposite signs): it is said, never returned silently.
CANCELLED = 1e-4


def differentiated_score(raw: torch.Tensor, target: Target, kind: str, activation: str) -> torch.Tensor:
    """(B,) the score a CAM differentiates: the class log-odds or logit, summed over a region target's region."""
    single = getattr(target, "single_logit", False)
    if activation is None:  # LoadedModel's default: softmax for C > 1, sigmoid for one logit
        activation = "softmax" if raw.shape[1] > 1 else "sigmoid"
    if kind == "auto":  # see the module docstring
        kind = "log_odds" if getattr(target, "region", None) is not None or raw.shape[1] == 2 else "logit"
    if kind == "logit" or single or activation != "softmax" or raw.shape[1] < 2:
        return target.logit_score(raw)
    # Every class's log-odds y_k - logsumexp_{j != k} y_j, read by the target exactly as it reads logits.
    log_odds = torch.stack(
        [raw[:, k] - torch.logsumexp(torch.cat([raw[:, :k], raw[:, k + 1 :]], dim=1), dim=1) for k in range(raw.shape[1])],
        dim=1,
    )
    return target.logit_score(log_odds)


class CAMBase(Explainer):
    """Shared machinery of Grad-CAM-style explainers.

    Args:
        model: a ``LoadedModel`` (eager network) or a plain ``nn.Module`` (wrapped with softmax).
        layer: module name to compute the CAM at, or several separated by commas (their maps, each scaled to a
            maximum of 1, are summed); default chosen from the graph: segmenters: the last decoder block
            before the head (Seg-Grad-CAM); classifiers: the last module of every resolution stage from 1/2
            down to ``min_fraction`` of the input resolution, aggregated as in LayerCAM. Reported in
            ``stats["layer"]``.
        score: ``"auto"`` (default: log-odds for a region target or a two-class model, else the logit),
            ``"log_odds"`` or ``"logit"``: what is differentiated (see the module docstring).
        min_fraction: classifiers: the coarsest resolution share of the automatic layer(s) (default 1/4;
            LayerCAM 1/8). At 1/8 a 48^3 DenseNet121's layer is 6^3 cells of 8 voxels and Grad-CAM's peak
            missed the cause in 6 of 8 known-cause cases; at 1/4, 1 of 8.
    """

    name = "cam"
    options = CAMOptions
    needs_network = True
    multi_layer = False  # classifiers: aggregate every stage (LayerCAM) or take the deepest one

    def __init__(self, model, **options) -> None:
        super().__init__(model, **options)
        if self.layer is not None:
            get_layer(self.network, self.layer)

    def _layers_for(self, inputs: torch.Tensor) -> tuple[list[str], bool]:
        """The layers to hook, and whether they were chosen automatically (see ``_layers``). A single automatic
        layer comes with the other candidates it is scored against (`_faithful`), the graph rule's first."""
        if self.layer is not None:
            return [name.strip() for name in self.layer.split(",") if name.strip()], False
        layers, output = trace_layers(self.network, self.model.forward_raw, inputs)
        spatial = tuple(inputs.shape[2:])
        names = automatic_layers(layers, output, spatial, min_fraction=self.min_fraction, multi_layer=self.multi_layer)
        if not self.multi_layer and self.layer_rule == "faithful":
            names = faithful_candidates(layers, output, spatial, names[0], min_fraction=self.min_fraction)
        return names, True

    def weigh(self, activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        """Return weights broadcastable against ``activation`` (B, K, *s)."""
        raise NotImplementedError

    def cams(self, inputs: torch.Tensor, target: Target, names: list[str]) -> tuple[list[torch.Tensor], dict]:
        """ReLU(sum_k w_k A_k) at each of ``names`` from one forward/backward pass, upsampled to the input grid
        ((B, 1, *spatial) each), plus info (layer shapes, whether a map cancelled out)."""
        layers = [get_layer(self.network, name) for name in names]
        with eval_mode(self.network), torch.enable_grad(), ExitStack() as stack:
            records = [stack.enter_context(record_layer(layer)) for layer in layers]
            x = inputs.detach().clone().requires_grad_(True)
            raw = self.model.forward_raw(x)
            score = differentiated_score(raw, target, self.score, getattr(self.model, "activation", "softmax"))
            for name, rec in zip(names, records, strict=True):
                if rec.activation is None:
                    raise InputError(f"layer {name!r} was not used by the forward pass: pass another --layer")
                if not rec.activation.requires_grad:
                    raise InputError(
                        f"no gradient flows to layer {name!r}: use --method occlusion or rex for this model"
                    )
            score.sum().backward()
            self.count_backward()
        maps, shapes, cancelled = [], [], []
        for name, rec in zip(names, records, strict=True):
            activation = rec.activation.detach()
            gradient = rec.gradient.detach() if rec.gradient is not None else torch.zeros_like(activation)
            terms = self.weigh(activation, gradient) * activation
            cam = torch.relu(terms.sum(dim=1, keepdim=True))
            reach = float(terms.abs().sum(dim=1).max())
            if reach > 0 and float(cam.max()) < CANCELLED * reach:
                cancelled.append(name)
            maps.append(upsample(cam, tuple(inputs.shape[2:])))
            shapes.append(list(activation.shape[2:]))
        return maps, {"layer_shapes": shapes, "cancelled": cancelled, "logit_score": float(score.detach().sum())}

    def _attribute(self, inputs: torch.Tensor, target: Target, progress: Progress | None) -> Attribution:
        report(progress, f"{self.name}: forward/backward", 0.0)
        names, automatic = self._layers_for(inputs)
        maps, info = self.cams(inputs, target, names)
        choice = None
        if automatic and len(names) > 1 and not self.multi_layer:
            report(progress, f"{self.name}: choosing the most faithful of {len(names)} layers", 0.5)
            choice = choose_layer(self.model, inputs, target, names, maps, seed=self.seed)
            keep = choice.index
            names, maps = [names[keep]], [maps[keep]]
            info["layer_shapes"] = [info["layer_shapes"][keep]]
            info["cancelled"] = [name for name in info["cancelled"] if name == names[0]]
        if len(maps) == 1:
            cam_map = maps[0][0, 0].float().contiguous()
        else:  # LayerCAM-style aggregation: each stage scaled to a maximum of 1, then summed
            cam_map = torch.zeros_like(maps[0][0, 0], dtype=torch.float32)
            for cam in maps:
                peak = float(cam.max())
                if peak > 0:
                    cam_map += cam[0, 0].float() / peak
            cam_map = cam_map.contiguous()
        stats = {
            "layer": ",".join(names),
            "layers": names,
            "layer_automatic": automatic,
            "layer_shape": info["layer_shapes"][0] if len(names) == 1 else info["layer_shapes"],
            "warnings": [],
        }
        if choice is not None:
            stats["layer_choice"] = choice.rows
        for name in info["cancelled"]:
            stats["warnings"].append(
                f"{self.name}: the map at layer {name!r} cancels out (its positive part is under "
                f"{CANCELLED:g} of its terms): no positive evidence there — try another --layer (--layer list)"
            )
        return Attribution(map=cam_map, masks={}, stats=stats, details={"method": self.name},
                           canvas=None if choice is None else choice.canvas)
