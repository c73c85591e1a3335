"""One counterfactual case: remove the region, keep only the region, and score all three images.

``counterfactual(image, model=..., mask=...)`` answers a radiologist's question directly: would the
model still call it a glioma without the tumour (ΔDrop), and is the tumour alone enough (ΔFocus)?
The region can come from a mask file (any overlapping grid), a segmenter's prediction, or an
explanation's sufficient mask. The "only" image keeps exactly the voxels the "removed" image replaces
(the dilated region inside the foreground), so the two interventions split the image between them.

Example (3D, runnable with the sample models installed):
    >>> import voxcause
    >>> from voxcause.counterfactual import counterfactual
    >>> result = counterfactual("case.nii.gz", model="card.json", mask="tumour.nii.gz")  # doctest: +SKIP
    >>> result.scores.delta_drop, result.scores.delta_focus  # doctest: +SKIP
    >>> result.save("out/")  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..io import Volume, atomic_directory, read_image, write_image, write_segmentation
from ..jsonio import dumps
from ..models import LoadedModel, load_model
from ..targets import resolve_target
from ..typing import Progress
from .evaluate import model_inputs
from .inpaint import Infill, remove_region
from .masks import mask_from_array, mask_from_explanation, mask_from_file, mask_from_segmenter
from .metrics import CounterfactualScores, score_variants
from .overview import render_counterfactual
from .region_only import keep_region
from .regions import bounding_box, dilate, mm_to_voxels


@dataclass
class Counterfactual:
    """A scored counterfactual case on the image's own voxels.

    Attributes:
        volume: the input image.
        region: bool (*S), the region as given (mask, segmenter or explanation).
        removal: the `Infill` (``.array`` the removed image, ``.filled`` the replaced voxels).
        only: float32 (C, *S), the region-only image.
        scores: `CounterfactualScores` (p_orig, p_remove, p_only, ΔDrop, ΔFocus, predicted classes).
        params, stats, model, mask_source: what was done, with which settings, at what cost.
    """

    volume: Volume
    region: np.ndarray
    removal: Infill
    only: np.ndarray
    scores: CounterfactualScores
    params: dict[str, Any]
    stats: dict[str, Any]
    model: dict[str, Any] = field(default_factory=dict)
    mask_source: str = "array"
    channel_names: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        """The ``summary.json`` content (docs/design.md#the-counterfactual-folder: p_orig, p_remove, p_only,
        delta_drop, delta_focus, classes)."""
        from .._version import __version__

        voxel_ml = float(np.prod(self.volume.spacing)) / 1000.0
        scores = self.scores.as_dict()
        return {
            "method": "counterfactual",
            "target": scores.pop("target"),
            "score": self.scores.p_orig,
            **scores,
            "forward_passes": self.stats.get("forward_passes", 0),
            "seconds": self.stats.get("seconds", 0.0),
            "device": self.stats.get("device", "cpu"),
            "version": __version__,
            "input": self.volume.paths,
            "model": self.model,
            "mask": {"source": self.mask_source, "voxels": int(self.region.sum()),
                     "filled_voxels": int(self.removal.filled.sum()),
                     "filled_ml": round(int(self.removal.filled.sum()) * voxel_ml, 4)},
            "params": self.params,
            "stats": self.stats,
            "removal": self.removal.details,
        }

    def display_channel(self) -> int:
        """The channel where the region stands out most from its ring (|mean difference| / ring sd): T1c or
        FLAIR for a tumour, the tagged sequence for a scanner tag."""
        if self.volume.channels == 1:
            return 0
        box = bounding_box(self.region, pad=mm_to_voxels(4.0, self.volume.spacing))
        region = self.region[box]
        ring = dilate(region, 4.0, self.volume.spacing) & ~region
        if not ring.any():
            return 0
        contrast = [abs(float(c[box][region].mean() - c[box][ring].mean())) / (float(c[box][ring].std()) or 1.0)
                    for c in self.volume.array]
        return int(np.argmax(contrast))

    def region_map(self) -> np.ndarray:
        """(*S) float32: ΔDrop on the region's voxels, 0 elsewhere — the region's share of the decision as a map."""
        return np.where(self.region, np.float32(self.scores.delta_drop), np.float32(0.0)).astype(np.float32)

    def save(self, out_dir: str | Path) -> Path:
        """Write the outputs of docs/design.md#the-counterfactual-folder into ``out_dir`` atomically (all in
        the input's geometry).

        ``removed.nii.gz`` and ``only.nii.gz`` (the two counterfactual images), ``map.nii.gz`` (ΔDrop on the
        region), ``explanation.seg.nrrd`` (segments "region" and "removed (dilated region)"),
        ``summary.json`` and ``overview.png``.
        """
        volume = self.volume
        with atomic_directory(out_dir) as staging:
            write_image(_squeeze(self.removal.array), volume, staging / "removed.nii.gz")
            write_image(_squeeze(self.only), volume, staging / "only.nii.gz")
            write_image(self.region_map(), volume, staging / "map.nii.gz")
            write_segmentation(staging / "explanation.seg.nrrd",
                               [("region", self.region, (0.2, 0.9, 0.2)),
                                ("removed (dilated region)", self.removal.filled, (1.0, 0.6, 0.1))], volume)
            (staging / "summary.json").write_text(dumps(self.summary()), encoding="utf-8")
            self.render(staging / "overview.png")
        return Path(out_dir)

    def render(self, path: str | Path) -> Path:
        """The overview PNG: original / removed / only with their target scores and predicted classes."""
        s = self.scores
        label = s.target["label"]
        channel = self.display_channel()
        name = self.channel_names[channel] if channel < len(self.channel_names) else f"channel {channel}"
        columns = [
            (f"original ({name})\nP({label}) = {s.p_orig:.3f} → {s.predicted['orig']['label']}",
             self.volume.array[channel]),
            (f"removed ({self.removal.method})\nP({label}) = {s.p_remove:.3f} → {s.predicted['remove']['label']}",
             self.removal.array[channel]),
            (f"region only ({self.params['only_baseline']})\nP({label}) = {s.p_only:.3f} → "
             f"{s.predicted['only']['label']}", self.only[channel]),
        ]
        relative = f"{100 * s.relative_drop:.0f}%" if s.relative_drop is not None else "n/a"
        lines = [f"ΔDrop = P_orig − P_remove = {s.delta_drop:+.3f} ({relative} of P_orig)    "
                 f"ΔFocus = P_only = {s.delta_focus:.3f}",
                 f"region {int(self.region.sum())} voxels, removed {int(self.removal.filled.sum())} "
                 f"(dilated {self.params['dilate_mm']} mm); mask from {self.mask_source}; "
                 f"normalisation {self.params['normalization']}"]
        return render_counterfactual(path, columns, self.region, spacing=self.volume.spacing,
                                     title=f"voxcause counterfactual: does '{label}' need this region?", lines=lines,
                                     direction=self.volume.reference.GetDirection())


def _squeeze(array: np.ndarray) -> np.ndarray:
    return array[0] if array.shape[0] == 1 else array


def resolve_region(
    volume: Volume,
    *,
    mask: Any = None,
    mask_labels: Sequence[int] | None = None,
    segmenter: Any = None,
    segmenter_label: int | str | None = None,
    explanation_method: str | None = None,
    model: LoadedModel | None = None,
    target: int | str | None = None,
    seed: int = 0,
    explanation_options: dict | None = None,
) -> tuple[np.ndarray, str]:
    """The region from exactly one source: ``mask`` (file/array), ``segmenter``, or ``explanation_method``."""
    given = [mask is not None, segmenter is not None, explanation_method is not None]
    if sum(given) != 1:
        raise InputError("give exactly one region source: --mask FILE, --mask-from-segmenter MODEL or "
                         "--mask-from-explanation [METHOD]")
    if mask is not None:
        if isinstance(mask, np.ndarray | torch.Tensor):
            return mask_from_array(np.asarray(mask), volume), "array"
        return mask_from_file(mask, volume, labels=mask_labels), str(mask)
    if segmenter is not None:
        name = getattr(getattr(segmenter, "card", None), "name", str(segmenter))
        return mask_from_segmenter(segmenter, volume, label=segmenter_label), f"segmenter {name}"
    region = mask_from_explanation(volume, model=model, target=target, method=explanation_method, seed=seed,
                                   **(explanation_options or {}))
    return region, f"explanation ({explanation_method}, sufficient)"


def counterfactual(
    image: str | Path | Sequence[str | Path] | Volume,
    *,
    model: str | Path | LoadedModel,
    mask: Any = None,
    mask_labels: Sequence[int] | None = None,
    segmenter: Any = None,
    segmenter_label: int | str | None = None,
    explanation_method: str | None = None,
    explanation_options: dict | None = None,
    target: int | str | None = None,
    region: Any = None,
    removal: str = "harmonic",
    dilate_mm: float = 2.0,
    ring_mm: float = 4.0,
    context: str | Path | Volume | np.ndarray | None = None,
    only_baseline: str = "mean",
    only_value: float = 0.0,
    blur_mm: float = 8.0,
    normalization: str = "frozen",
    seed: int = 0,
    device: str = "auto",
    model_options: dict | None = None,
    progress: Progress | None = None,
    **removal_options: Any,
) -> Counterfactual:
    """Score an image with a region removed and with only the region kept.

    Args:
        image: a path SimpleITK reads, per-channel paths, or a `Volume` ((C, *S), 2D or 3D).
        model: the model to question (path/card/bundle or `LoadedModel`), classifier or segmenter.
        mask / mask_labels: the region as a file (any overlapping grid; resampled) or an array on the image
            grid; ``mask_labels`` picks label values (default: all non-zero).
        segmenter / segmenter_label: take the region from this segmenter's prediction instead.
        explanation_method: take the region from the ``sufficient`` mask of this explanation of ``model``;
            ``explanation_options`` go to `voxcause.explain` (e.g. ``{"iterations": 10}``).
        target: label name or index (default: the predicted class; a segmenter's largest foreground class).
        region: segmenters only: the fixed region whose mean target probability is scored (path or array;
            default the predicted region of the target class on the original).
        removal: ``harmonic`` (default), ``navier-stokes``, ``telea``, ``context``, ``constant``.
        dilate_mm, ring_mm: grow the region before removal; width of the matched ring (defaults 2 and 4 mm).
        context: healthy volume on the image grid, for ``removal="context"``.
        only_baseline / only_value / blur_mm: how the rest is suppressed in the region-only image.
        normalization: ``frozen`` (default; the original's intensity statistics for all three) or ``refit``.
        seed: noise seed of the infill; device: ``auto`` (CUDA when visible) / ``cpu`` / ``cuda``;
        model_options: `load_model` overrides.
        progress: optional ``callback(stage, fraction)``.
        **removal_options: further `remove_region` options (``noise``, ``axis``, ``radius``, ``value``).
    """
    started = time.perf_counter()
    report = progress or (lambda stage, fraction: None)
    volume = image if isinstance(image, Volume) else read_image(image)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, device=device, **(model_options or {}))
    loaded.check_volume(volume)
    report("region", 0.05)
    mask_array, source = resolve_region(volume, mask=mask, mask_labels=mask_labels, segmenter=segmenter,
                                        segmenter_label=segmenter_label, explanation_method=explanation_method,
                                        model=loaded, target=target, seed=seed,
                                        explanation_options=explanation_options)
    context_array = None
    if context is not None:
        context_array = context.array if isinstance(context, Volume) else (
            np.asarray(context) if isinstance(context, np.ndarray) else read_image(context).array)
    report("removing the region", 0.2)
    removed = remove_region(volume.array, mask_array, spacing=volume.spacing, method=removal, dilate_mm=dilate_mm,
                            ring_mm=ring_mm, context=context_array, seed=seed, **removal_options)
    report("keeping only the region", 0.6)
    only = keep_region(volume.array, removed.filled, spacing=volume.spacing, baseline=only_baseline,
                       value=only_value, sigma_mm=blur_mm)
    report("scoring", 0.7)
    passes_before = loaded.forward_passes
    batch = model_inputs(loaded, volume, [volume.array, removed.array, only], normalization=normalization)
    region_model = None
    if region is not None:
        fixed = mask_from_array(region, volume) if isinstance(region, np.ndarray) else mask_from_file(region, volume)
        region_model = loaded.mask_to_model_space(fixed)
    resolved = resolve_target(loaded, batch[:1], target, region_model)
    with torch.no_grad():
        probs = loaded.predict(batch)
    task = loaded.infer_task(probs)
    scores = score_variants(probs, target=resolved, labels=loaded.labels_for(probs.shape[1]), task=task,
                            threshold=loaded.threshold)
    report("scored", 0.95)
    params = {"removal": removal, "dilate_mm": dilate_mm, "ring_mm": ring_mm, "only_baseline": only_baseline,
              "only_value": only_value, "blur_mm": blur_mm, "normalization": normalization, "seed": seed,
              **{k: v for k, v in removal_options.items() if isinstance(v, int | float | str | bool)}}
    stats = {"forward_passes": loaded.forward_passes - passes_before, "seconds": time.perf_counter() - started,
             "removal_seconds": removed.seconds, "device": str(loaded.device), "model_grid": list(batch.shape[2:])}
    names = loaded.card.channels if isinstance(loaded.card.channels, tuple) else ()
    return Counterfactual(volume=volume, region=mask_array, removal=removed, only=only, scores=scores, params=params,
                          stats=stats, mask_source=source, channel_names=names,
                          model={"name": loaded.card.name, "source": str(loaded.card.source) if loaded.card.source
                                 else None, "task": task})
