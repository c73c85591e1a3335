"""Dual-evidence attribution (``dea``): gradient and intervention evidence fused for segmentation.

Why: a Seg-Grad-CAM map is sharp but only says how the logits *would* move for an infinitesimal change; it can
light up things that, removed, change nothing (and flicker under noise). Occlusion measures what removal
actually does, but only at the resolution of its regions. ``dea`` keeps the sharpness of the gradient where
the gradient is trustworthy and falls back on the causal (interventional) evidence elsewhere.

The formula (all maps on the model grid, v a voxel, r(v) the occlusion region holding v):

    G(v)   = SegGradCAM(x)(v) / max G                              gradient evidence in [0, 1]
    I(v)   = max(0, s(x) - s(x with r(v) -> baseline)) / max       intervention evidence in [0, 1]
    S(v)   = clip(1 - sd_k G_k(v) / (mean_k G_k(v) + 0.01), 0, 1)   stability over x and K noisy copies
                                                                    x + N(0, (noise * sd(x))^2)
    g_r    = mean_{v in r} G(v) / max_r' mean_{v in r'} G(v)       the gradient's region-level verdict
    A(v)   = 1 - |g_{r(v)} - I(v)|                                  agreement of the two at region level
    w(v)   = S(v) * A(v)
    F(v)   = w(v) * G(v) + (1 - w(v)) * I(v)

So inside a region that removal shows to matter *and* the gradient also points at, with a stable
gradient, F follows the gradient's within-region detail; where the gradient is unstable or disagrees with the
intervention (a gradient hot spot whose removal changes nothing, or a region whose removal matters but the
gradient misses), F takes the intervention's value. ``s`` is the target's probability score (mean class
probability inside the region for a segmenter). Cost: (1 + K) forward/backward passes plus one forward
sample per occlusion region.

Example (3D):
    >>> from voxcause.fusion import DualEvidence
    >>> attribution = DualEvidence(model, cell=8).attribute(x, target=region_target)  # doctest: +SKIP
    >>> attribution.details["weight"]  # w(v): where the gradient was trusted  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ..attribution import Explainer, report
from ..errors import InputError
from ..explanation import Attribution
from ..options import layer_option, option, seed_option
from ..saliency.gradcam import GradCAM
from ..saliency.occlusion import Occlusion, RegionOptions
from ..typing import Progress, Target

EPS = 0.01


def _unit(t: torch.Tensor) -> torch.Tensor:
    """Clip at 0 and divide by the maximum (all-zero stays zero)."""
    t = torch.clamp(t, min=0)
    peak = float(t.max())
    return t / peak if peak > 0 else t


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.numel() < 2:
        return float("nan")
    ra = a.argsort().argsort().double()
    rb = b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(ra.norm() * rb.norm())
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


@dataclass(frozen=True)
class DeaOptions(RegionOptions):
    layer: str | None = layer_option()
    noise: float = option(0.05, "noise sd as a share of the input's sd, for the gradient's stability", minimum=0.0)
    n_noise: int = option(4, "noisy copies for the stability term (0: the gradient is always trusted)", minimum=0)
    seed: int = seed_option()


class DualEvidence(Explainer):
    """Dual-evidence fusion of Seg-Grad-CAM (gradient) and occlusion (intervention).

    Args:
        model: ``LoadedModel`` with an eager network, or an ``nn.Module``.
        layer: CAM layer name (default automatic, see ``voxcause.saliency``).
        regions: ``"grid"`` (default) or ``"supervoxels"`` for the intervention half.
        cell, n_segments, compactness, baseline, batch_size: passed to :class:`voxcause.saliency.Occlusion`.
        noise: noise sd as a fraction of the input's sd for the stability term (default 0.05).
        n_noise: noisy copies K for the stability term (default 4; 0 means S = 1).
        seed: seeds the noise.
    """

    name = "dea"
    options = DeaOptions
    needs_network = True

    def __init__(self, model, **options) -> None:
        super().__init__(model, **options)
        self.gradient = GradCAM(self.model, layer=self.layer)
        region_options = {field.name: getattr(self, field.name) for field in fields(RegionOptions)}
        self.intervention = Occlusion(self.model, **region_options)

    def _attribute(self, inputs: torch.Tensor, target: Target, progress: Progress | None) -> Attribution:
        """F (see the module docstring) in [0, 1]; its parts are in ``details`` (volumes on the model grid)."""
        report(progress, "dea: gradient evidence", 0.0)
        first = self.gradient.attribute(inputs, target=target)
        layer = first.stats["layer"]
        if self.gradient.layer is None:
            self.gradient.layer = layer  # reuse the choice for the noisy copies
        try:
            maps = [first.map]
            generator = torch.Generator().manual_seed(self.seed)
            sd = float(inputs.std()) or 1.0
            self.count_backward(first.stats["backward_passes"])
            for k in range(self.n_noise):
                noise = torch.randn(inputs.shape, generator=generator).to(inputs.device) * (self.noise * sd)
                noisy = self.gradient.attribute(inputs + noise, target=target)
                maps.append(noisy.map)
                self.count_backward(noisy.stats["backward_passes"])
                report(progress, "dea: gradient stability", 0.3 * (k + 1) / max(self.n_noise, 1))
        finally:
            self.gradient.layer = None if first.stats["layer_automatic"] else layer
        stack = torch.stack([m.double() for m in maps])
        peak = float(stack.max()) or 1.0
        mean, sd_map = stack.mean(0) / peak, stack.std(0, unbiased=False) / peak
        stability = torch.clamp(1 - sd_map / (mean + EPS), 0, 1) if self.n_noise else torch.ones_like(mean)
        gradient = _unit(first.map.double())

        def occlusion_progress(stage: str, fraction: float) -> None:
            report(progress, "dea: " + stage, 0.3 + 0.7 * fraction)

        occluded = self.intervention.attribute(inputs, target=target, progress=occlusion_progress)
        labels = occluded.details.get("labels")
        if labels is None:
            raise InputError("dea needs non-overlapping occlusion regions: leave stride unset")
        intervention = _unit(occluded.map.double())
        flat = labels.flatten().to(gradient.device)
        n_regions = int(flat.max()) + 1
        sizes = torch.bincount(flat, minlength=n_regions).double().clamp(min=1)
        region_gradient = torch.bincount(flat, weights=gradient.flatten(), minlength=n_regions) / sizes
        region_gradient = _unit(region_gradient)
        region_intervention = torch.bincount(flat, weights=intervention.flatten(), minlength=n_regions) / sizes
        agreement = 1 - (region_gradient[labels] - intervention).abs()
        weight = stability * agreement
        fused = weight * gradient + (1 - weight) * intervention
        region = getattr(target, "region", None)
        inside = torch.as_tensor(region).bool().to(weight.device) if region is not None else None
        stats = {
            "layer": layer,
            "layer_automatic": first.stats["layer_automatic"],
            "regions": occluded.stats["regions"],
            "n_regions": n_regions,
            "n_noise": self.n_noise,
            "noise": self.noise,
            "region_rank_agreement": _spearman(region_gradient, region_intervention),
            "mean_weight": float(weight.mean()),
            "mean_weight_in_region": float(weight[inside].mean()) if inside is not None else None,
            "mean_stability": float(stability.mean()),
            "warnings": [*first.stats["warnings"], *occluded.stats["warnings"]],
        }
        details = {
            "method": self.name,
            "gradient": gradient.float(),
            "intervention": intervention.float(),
            "stability": stability.float(),
            "agreement": agreement.float(),
            "weight": weight.float(),
            "labels": labels,
        }
        return Attribution(map=fused.float(), masks={}, stats=stats, details=details)
