"""`voxcause.explain`: image + model -> target -> explanation, in the image's own geometry."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .attribution import Explainer, metered
from .causal.multi import SHARED_METHODS, explain_targets
from .certificate import certify
from .crop import ContextCrop, FullInputCanvasCheck, certify_on_full, find_context_crop, find_shared_crop
from .errors import InputError
from .explainers import declared_options, explainer_class, make_explainer
from .explanation import Attribution, Explanation, Explanations, split_volumes
from .io import Volume, read_image
from .io.channel_names import check_channel_order
from .io.photo import fit_photo
from .memory import check_memory
from .models import LoadedModel, load_model
from .probability import voxel_probability
from .progress import interactive_progress
from .removal import canvas
from .saliency._faithful import certificate_canvas
from .targets import is_all, outcomes, resolve_all_targets, resolve_target
from .typing import Progress, Target

ImageLike = str | Path | Sequence[str | Path] | Volume


def _as_volume(image: ImageLike) -> Volume:
    return image if isinstance(image, Volume) else read_image(image)


def _as_model(
    model: str | Path | LoadedModel, device: str, overrides: dict, precision: str | None, compile: bool | None
) -> LoadedModel:
    if isinstance(model, LoadedModel):
        model.configure(precision=precision, compile=compile)
        return model
    speed = {key: value for key, value in (("precision", precision), ("compile", compile)) if value is not None}
    return load_model(model, device=device, **overrides, **speed)


def _region_mask(region: Any, volume: Volume) -> np.ndarray | None:
    """A region given as a path or array -> bool array on the image grid (resampled if another grid)."""
    if region is None:
        return None
    if isinstance(region, np.ndarray):
        mask = region.astype(bool)
    else:
        from .io.resample import read_mask_like

        mask = read_mask_like(region, volume)
    if mask.shape != volume.spatial_shape:
        raise InputError(
            f"region mask shape {mask.shape} differs from the image {volume.spatial_shape} — "
            "pass a mask on the image's grid"
        )
    if not mask.any():
        raise InputError("the region mask is empty — pass a mask with at least one voxel inside the image")
    if mask.all():
        raise InputError("the region mask covers the whole image — pass a smaller --region mask")
    return mask


def explain(
    image: ImageLike,
    *,
    model: str | Path | LoadedModel,
    target: int | str | None = None,
    method: str = "rex",
    region: Any = None,
    seed: int = 0,
    device: str = "auto",
    progress: Progress | bool | None = None,
    model_options: dict | None = None,
    pass_fraction: float = 0.5,
    context: ImageLike | None = None,
    precision: str | None = None,
    compile: bool | None = None,
    flips: bool = False,
    channel_order_checked: bool = False,
    max_memory: int | str | None = None,
    **options: Any,
) -> Explanation | Explanations:
    """Explain one image.

    Args:
        image: a path SimpleITK reads, a list of per-channel paths, or a `Volume`.
        model: a model path/card/bundle (see `load_model`) or a `LoadedModel`.
        target: label name or index; default the predicted class (largest foreground class for segmenters).
            ``"all"`` (segmenters, method rex): every label the model predicts on the image — for a one-label
            model every connected component of it — explained from one shared search, each with its own map and
            certificate; returns `Explanations` (`voxcause.causal.multi`).
        method: a name from `voxcause.explainers.METHODS` (``rex``, and the saliency family when installed).
        region: segmenters only: a mask (path or bool array on the image grid) whose mean target probability
            is explained; default the predicted region of the target class.
        seed: random seed of stochastic methods.
        device: ``auto`` (default: CUDA when a GPU is visible), ``cpu`` or ``cuda``; the device used is
            recorded as ``stats["device"]`` (summary.json ``device``). Ignored for a `LoadedModel` (its own).
        progress: a ``callback(stage, fraction)``; default (None): a progress bar with the time left in a terminal
            or notebook (`voxcause.progress.interactive_progress`), nothing elsewhere; False: nothing.
        model_options: overrides for `load_model` (task, labels, spatial_size, normalize, output, batch_size).
        pass_fraction: segmenters: the decision holds while the region score keeps this share of its value.
        context: a healthy/reference volume for ``occlusion="context"``.
        precision: forward-pass precision, ``fp32`` (default), ``bf16`` or ``fp16`` (CUDA only); None keeps a
            `LoadedModel`'s own setting.
        compile: ``torch.compile`` the network for scoring (falls back to eager with a warning); None keeps it.
        flips: segmenters: the uncertainty also spreads over test-time flips of each ensemble member
            (`voxcause.probability`; without it, an ensemble's folds only, and none for a single model).
        channel_order_checked: go on when channel file names name another slot's channel of the card (refused
            by default: `voxcause.io.channel_names`).
        max_memory: refuse the run when its estimated peak memory exceeds this (bytes or ``"8G"``); default:
            refuse only what the memory available cannot hold (`voxcause.memory.check_memory`).
        **options: method options (e.g. ``iterations``, ``rule``, ``occlusion``).

    Returns:
        An `Explanation` (map and masks on the image's voxels, statistics, ``save(out_dir)``); for
        ``target="all"`` an `Explanations`, one per target (``save(out_dir)``: a folder per target).

    Example:
        >>> result = explain("case.nii.gz", model="card.json", seed=0)  # doctest: +SKIP
        >>> result.save("out/")  # doctest: +SKIP
    """
    started = time.perf_counter()
    explainer_class(method).options.build(method, options)  # bad options fail before anything is read
    if is_all(target):
        _check_all(method, region)
    case = _prepare(image, model, region, context, device=device, model_options=model_options or {},
                    precision=precision, compile=compile, channel_order_checked=channel_order_checked,
                    max_memory=max_memory)
    cost: dict[str, Any] = {}
    with metered(case.model, cost, since=started), interactive_progress(progress, "voxcause explain") as progress:
        with torch.no_grad():
            probs = case.model.predict(case.inputs)
        if is_all(target):
            every = _explain_all(case, method, probs, options, seed=seed, progress=progress,
                                 pass_fraction=pass_fraction, flips=flips)
        else:
            target = resolve_target(case.model, case.inputs, target, case.region_model, pass_fraction=pass_fraction,
                                    probs=probs)
            explainer, attribution = _run_explainer(case, method, target, options, seed=seed, progress=progress,
                                                    probs=probs)
            voxel_maps = voxel_probability(case.model, case.inputs, probs, target.index, case.to_image, flips=flips)
            params = {**explainer.params(), "seed": seed}
            certificate = attribution.certificate or certify(
                case.model, case.inputs, target, attribution.map, explanation=attribution.masks.get("sufficient"),
                baseline=attribution.canvas if attribution.canvas is not None else
                _certificate_baseline(case.model, case.inputs, target, params, seed), seed=seed,
            ).to_dict()
    if is_all(target):  # packaged once ``cost`` holds the whole run's
        items = [_package(case, method, one, probs, attribution, maps, params, attribution.certificate, cost)
                 for one, attribution, maps, params in every]
        return Explanations(items, {**cost, "shared_search": every[0][1].stats["shared_search"]})
    return _package(case, method, target, probs, attribution, voxel_maps, params, certificate, cost)


def _check_all(method: str, region: Any) -> None:
    """``target="all"`` is one shared causal search over the model's own segmentation (`voxcause.causal.multi`)."""
    if method not in SHARED_METHODS:
        raise InputError(f"--target all is one shared search of method {', '.join(SHARED_METHODS)}, not {method} — "
                         f"use --method {SHARED_METHODS[0]}, or explain the labels one at a time with --target")
    if region is not None:
        raise InputError("--target all explains the regions the model predicts — drop --region, or explain one "
                         "label in your region with --target")


def _explain_all(case: _Case, method: str, probs: torch.Tensor, options: dict, *, seed: int,
                 progress: Progress | None, pass_fraction: float, flips: bool) -> list[tuple]:
    """``target="all"``: every label the segmenter predicts (a one-label model: every connected component)
    explained from one shared search (`voxcause.causal.multi.explain_targets`), each with its own certificate:
    (target, attribution, model probability maps, params) per target."""
    targets, warnings = resolve_all_targets(case.model, probs, pass_fraction=pass_fraction)
    if len(targets) == 1:  # nothing to share: explained as --target would (a context crop included)
        explainer, attribution = _run_explainer(case, method, targets[0], options, seed=seed, progress=progress,
                                                probs=probs)
        attribution.stats["shared_search"] = {"targets": 1, "searched_together": 0}
        attributions = [attribution]
    else:
        crop = find_shared_crop(case.model, case.inputs, targets, method, probs)
        explainer, options = _explainer_for(case, method, options, seed, crop)
        if crop is None:
            attributions = explain_targets(explainer, case.inputs, targets, progress)
        else:  # searched together on a crop around every region, each certified on the full input (`voxcause.crop`)
            value = float(options.get("occlusion_value") or 0.0)
            checks = FullInputCanvasCheck(case.model, case.inputs, targets, probs, seed=seed, value=value,
                                          context=case.context)
            found = explain_targets(explainer, crop.cut(case.inputs), [crop.target(one) for one in targets], progress,
                                    full_checks=checks.outcomes)
            attributions = []
            for index, (one, attribution) in enumerate(zip(targets, found, strict=True)):
                before = int(case.model.forward_passes)
                attributions.append(_on_full(case, crop, one, attribution, probs, seed, value, checks, index))
                attributions[-1].stats["target_passes"] += int(case.model.forward_passes) - before
    params = {**explainer.params(), "seed": seed}
    for attribution in attributions:
        attribution.stats.setdefault("warnings", []).extend(warnings)
    return [(one, attribution, voxel_probability(case.model, case.inputs, probs, one.index, case.to_image,
                                                 flips=flips), params)
            for one, attribution in zip(targets, attributions, strict=True)]


@dataclass(frozen=True)
class _Case:
    """The prepared inputs of one run: the image, the model and the image on the model's grid."""

    volume: Volume
    model: LoadedModel
    inputs: torch.Tensor  # (1, C, *S_model)
    region_image: np.ndarray | None  # the user's region on the image grid
    region_model: torch.Tensor | None  # the same on the model grid
    context: torch.Tensor | None  # the healthy volume on the model grid

    def to_image(self, values: torch.Tensor, order: int = 1) -> np.ndarray:
        """A (*S_model) map or mask on the image's voxels."""
        return self.model.to_image_space(values, self.volume, order=order)


def _prepare(image: ImageLike, model: str | Path | LoadedModel, region: Any, context: ImageLike | None, *,
             device: str, model_options: dict, precision: str | None, compile: bool | None,
             channel_order_checked: bool, max_memory: int | str | None = None) -> _Case:
    """Read the image, load the model, put both (and the region and context) on the model's grid."""
    volume = _as_volume(image)
    loaded = _as_model(model, device, model_options, precision, compile)
    if not channel_order_checked and isinstance(loaded.card.channels, tuple):
        check_channel_order(volume.paths, loaded.card.channels)
    volume, fitted = fit_photo(volume, loaded.card.channel_count)
    if fitted:
        loaded.notes.append(fitted)
    check_memory(volume, loaded, max_memory)
    inputs = loaded.prepare(volume)
    region_image = _region_mask(region, volume)
    region_model = loaded.mask_to_model_space(region_image) if region_image is not None else None
    if region_model is not None and not region_model.any():
        raise InputError("the region mask vanishes on the model's grid — pass a larger --region mask")
    healthy = loaded.prepare(_as_volume(context)) if context is not None else None
    return _Case(volume, loaded, inputs, region_image, region_model, healthy)


def _supplied(case: _Case, method: str, options: dict, seed: int) -> tuple[dict, dict[str, Any]]:
    """The user's options (a context volume makes ``occlusion`` default to ``context``) and what the run supplies
    to the method: seed, grid spacing, context."""
    supplied: dict[str, Any] = {"seed": seed, "spacing": case.model.grid_spacing(case.volume)}
    if case.context is not None:
        supplied["context"] = case.context
        if "occlusion" in {option.name for option in declared_options(method)}:
            options = {"occlusion": "context", **options}
    return options, supplied


def _run_explainer(case: _Case, method: str, target: Target, options: dict, *, seed: int,
                   progress: Progress | None, probs: torch.Tensor) -> tuple[Explainer, Attribution]:
    """Build ``method`` with the user's options and what the run supplies (seed, grid spacing, context), and
    explain ``target``; a context volume makes ``occlusion`` default to ``context``. Rex on a whole-image
    segmenter runs on a context crop around the region when one agrees with ``probs``, the full prediction."""
    crop = find_context_crop(case.model, case.inputs, target, method, probs)
    explainer, options = _explainer_for(case, method, options, seed, crop)
    if crop is None:
        if hasattr(explainer, "image_outcome"):  # the prediction scored the image: not scored again
            score, holds, margin = outcomes(target, probs)[0].tolist()
            explainer.image_outcome = (score, bool(holds), margin)
        return explainer, explainer.attribute(case.inputs, target=target, progress=progress)
    # searched on the crop, certified on the full input (`voxcause.crop`); each canvas whose fully occluded crop
    # loses the decision is checked on the full input before its probes (one pass), so that a canvas only the crop
    # can use is passed over, and the run fails at once when every canvas is such
    value = float(options.get("occlusion_value") or 0.0)
    checks = FullInputCanvasCheck(case.model, case.inputs, [target], probs, seed=seed, value=value,
                                  context=case.context)
    if hasattr(explainer, "full_input_check"):
        explainer.full_input_check, explainer.image_outcome = checks.of(0), crop.outcome
    found = explainer.attribute(crop.cut(case.inputs), target=crop.target(target), progress=progress)
    return explainer, _on_full(case, crop, target, found, probs, seed, value, checks, 0)


def _on_full(case: _Case, crop: ContextCrop, target: Target, found: Attribution, probs: torch.Tensor, seed: int,
             value: float, checks: FullInputCanvasCheck, index: int) -> Attribution:
    """A crop's attribution on the full grid, certified on the full input (`crop.certify_on_full`), with the
    canvases ``checks`` scored there for target ``index``; one whose canvases could not remove the evidence (no
    search ran) keeps its ``fail``: there is nothing to certify."""
    attribution = crop.restore(found)
    if found.stats.get("iterations", {}).get("stopped") == "undecidable":
        attribution.certificate = found.certificate
    else:
        occluded = checks.known(attribution.stats.get("occlusion_used", "constant"), index)
        attribution.certificate = certify_on_full(case.model, case.inputs, target, attribution, probs=probs,
                                                  seed=seed, value=value, context=case.context,
                                                  occluded_outcome=occluded)
    checks.record(index, attribution.details["crop"])
    return attribution


def _explainer_for(case: _Case, method: str, options: dict, seed: int, crop) -> tuple[Explainer, dict]:
    """``method`` built with the user's options and what the run supplies (`_supplied`), the context volume cut
    to ``crop`` when the search runs on one; and the options as resolved."""
    options, supplied = _supplied(case, method, options, seed)
    if crop is not None and case.context is not None:
        supplied["context"] = crop.cut(case.context)
    return make_explainer(method, case.model, options, supplied=supplied), options



def _package(case: _Case, method: str, target: Target, probs: torch.Tensor, attribution: Attribution,
             voxel_maps: Any, params: dict, certificate: dict, cost: dict) -> Explanation:
    """The `Explanation` on the image's grid: map, masks, per-voxel details, the run's cost and warnings."""
    loaded = case.model
    masks = {name: case.to_image(mask.float(), order=0) > 0.5 for name, mask in attribution.masks.items()}
    if case.region_image is not None:
        masks.setdefault("target_region", case.region_image)
    elif hasattr(target, "region"):
        masks.setdefault("target_region", case.to_image(target.region.float(), order=0) > 0.5)
    details, extra_volumes = split_volumes(attribution.details, tuple(case.inputs.shape[2:]), case.to_image)
    if voxel_maps is not None:
        extra_volumes.update(voxel_maps.volumes())
        details["model_probability"] = voxel_maps.describe()
    stats = {**attribution.stats, **cost, "device": str(loaded.device), "model_grid": list(case.inputs.shape[2:]),
             "precision": loaded.precision, "compiled": loaded.compiled is not None}
    if loaded.sliding_window is not None:
        stats["sliding_window"] = {"roi_size": list(loaded.sliding_window.roi_size),
                                   "overlap": loaded.sliding_window.overlap}
    if loaded.notes:
        stats["model_notes"] = list(loaded.notes)
    verdict = [] if certificate["verdict"] == "pass" else [f"certificate {certificate['verdict']}: {certificate['reason']}"]
    stats["warnings"] = [*attribution.stats.get("warnings", []), *loaded.warnings, *verdict]
    predicted_labels = None
    if probs.ndim > 2:
        label_map = probs[0].argmax(0) if probs.shape[1] > 1 else (probs[0, 0] >= loaded.threshold).long()
        predicted_labels = np.rint(case.to_image(label_map.float(), order=0)).astype(np.uint8)
    return Explanation(
        predicted_labels=predicted_labels,
        map=case.to_image(attribution.map).astype(np.float32),
        masks=masks,
        target=target.describe(),
        score=float(target.score(probs)[0]),
        method=method,
        params=params,
        certificate=certificate,
        stats=stats,
        details=details,
        extra_volumes=extra_volumes,
        volume=case.volume,
        prediction=_prediction(loaded, probs),
        model={
            "name": loaded.card.name,
            "source": str(loaded.card.source) if loaded.card.source else None,
            "task": loaded.infer_task(probs),
            "output": loaded.card.output,
        },
    )


def _certificate_baseline(model: LoadedModel, inputs: torch.Tensor, target, params: dict, seed: int) -> torch.Tensor:
    """What occluded voxels become in the certificate's mutants: the method's own declared removal where it has
    one (a perturbation method is tested with what it removes with, `removal.canvas`, ``zero`` included); else,
    for a gradient method, which removes nothing, the canvas occlusion ``auto`` would choose
    (`causal.auto.auto_canvas`: one that loses the decision without faking evidence; constant 0 would keep
    "glioma" on the sample classifier)."""
    if params.get("baseline") is not None:
        return canvas(inputs, params["baseline"])
    return certificate_canvas(model, inputs, target, seed)


def _prediction(model: LoadedModel, probs: torch.Tensor) -> dict:
    labels = model.labels_for(probs.shape[1])
    if probs.ndim == 2:
        if probs.shape[1] == 1:
            positive = float(probs[0, 0])
            index = int(positive >= model.threshold)
            return {"index": index, "label": labels[index], "probabilities": {labels[1]: positive}}
        values = probs[0].tolist()
        index = int(np.argmax(values))
        return {"index": index, "label": labels[index], "probabilities": dict(zip(labels, values, strict=True))}
    label_map = probs[0].argmax(0) if probs.shape[1] > 1 else (probs[0, 0] >= model.threshold).long()
    counts = torch.bincount(label_map.flatten(), minlength=len(labels)).tolist()
    return {"voxels_per_label": dict(zip(labels, counts, strict=False))}
