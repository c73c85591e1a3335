"""What is explained: a class of a classifier, or a class inside a region of a segmenter.

A target turns the model's probabilities for a batch of (perturbed) inputs into

* ``score`` — the number reported and plotted (class probability, or the mean class probability inside the
  region), and
* ``passes`` — whether the decision still holds, the yes/no question causal responsibility is built on.

For a single sigmoid logit the decision is ``sigmoid >= threshold`` (positive) or ``< threshold``
(negative) — never a softmax over one logit, which would make every mutant pass. For a segmenter the region
is fixed (it does not move with the interventions) and the decision holds while the mean target probability
inside it keeps at least ``pass_fraction`` of its value on the unperturbed input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import torch

from .errors import InputError

if TYPE_CHECKING:
    from .typing import Target


@dataclass
class ClassTarget:
    """Class ``index`` of a classifier; ``single_logit`` for a one-output sigmoid model (index 1 = positive)."""

    index: int
    label: str
    threshold: float = 0.5
    single_logit: bool = False
    multi_label: bool = False

    def _probability(self, probs: torch.Tensor) -> torch.Tensor:
        if self.single_logit:
            positive = probs[:, 0]
            return positive if self.index == 1 else 1.0 - positive
        return probs[:, self.index]

    def score(self, probs: torch.Tensor) -> torch.Tensor:
        """(B, K) probabilities -> (B,) probability of the target class."""
        return self._probability(probs)

    def passes(self, probs: torch.Tensor) -> torch.Tensor:
        """(B, K) -> (B,) bool: is the target class still the model's decision?"""
        if self.single_logit:
            positive = probs[:, 0] >= self.threshold
            return positive if self.index == 1 else ~positive
        if self.multi_label:
            return probs[:, self.index] >= self.threshold
        return probs.argmax(dim=1) == self.index

    def margin(self, probs: torch.Tensor) -> torch.Tensor:
        """(B, K) -> (B,) how far the decision is from flipping: >= 0 while it holds (`passes`), in probability.

        A sigmoid or multi-label class: its probability minus the threshold; a softmax class: its probability
        minus the largest other class's."""
        if self.single_logit:
            excess = probs[:, 0] - self.threshold
            return excess if self.index == 1 else -excess
        if self.multi_label:
            return probs[:, self.index] - self.threshold
        others = torch.cat([probs[:, : self.index], probs[:, self.index + 1 :]], dim=1)
        return probs[:, self.index] - others.amax(dim=1)

    def logit_score(self, raw: torch.Tensor) -> torch.Tensor:
        """(B, K) logits -> (B,) the logit gradient methods differentiate."""
        if self.single_logit:
            return raw[:, 0] if self.index == 1 else -raw[:, 0]
        return raw[:, self.index]

    def describe(self) -> dict:
        return {"index": self.index, "label": self.label, "kind": "class"}


@dataclass
class RegionTarget:
    """Class ``index`` of a segmenter inside a fixed ``region`` (bool, (*S_model))."""

    index: int
    label: str
    region: torch.Tensor
    single_logit: bool = False
    pass_fraction: float = 0.5
    reference_score: float = field(default=1.0)
    component: int | None = None  # which connected component of the label's prediction (1 = largest), if one

    def _class_probability(self, probs: torch.Tensor) -> torch.Tensor:
        if self.single_logit:
            return probs[:, 0] if self.index == 1 else 1.0 - probs[:, 0]
        return probs[:, self.index]

    @cached_property
    def box(self) -> tuple[slice, ...]:
        """The region's bounding box (spatial slices of the model grid): all of the output the target reads, so
        a model may compute only that (`LoadedModel.predict(box=...)`)."""
        coords = self.region.nonzero()
        low, high = coords.min(0).values.tolist(), (coords.max(0).values + 1).tolist()
        return tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))

    def score(self, probs: torch.Tensor) -> torch.Tensor:
        """(B, K, *S) -> (B,) mean target probability inside the region; ``probs`` may also be cropped to
        `box`, (B, K, *box)."""
        region = self.region if tuple(probs.shape[2:]) == tuple(self.region.shape) else self.region[self.box]
        region = region.to(probs.device)
        values = self._class_probability(probs)
        return (values * region).flatten(1).sum(1) / region.sum().clamp(min=1)

    def passes(self, probs: torch.Tensor) -> torch.Tensor:
        return self.score(probs) >= self.pass_fraction * self.reference_score

    def margin(self, probs: torch.Tensor) -> torch.Tensor:
        """(B, K, *S) -> (B,) the region score above the share of the original it must keep (>= 0: passes)."""
        return self.score(probs) - self.pass_fraction * self.reference_score

    def logit_score(self, raw: torch.Tensor) -> torch.Tensor:
        """Seg-Grad-CAM's score: the sum of the class logits over the region."""
        region = self.region.to(raw.device)
        logits = raw[:, 0] if self.single_logit else raw[:, self.index]
        if self.single_logit and self.index == 0:
            logits = -logits
        return (logits * region).flatten(1).sum(1)

    def describe(self) -> dict:
        described = {
            "index": self.index,
            "label": self.label,
            "kind": "region",
            "region_voxels": int(self.region.sum()),
            "pass_fraction": self.pass_fraction,
        }
        if self.component is not None:
            described["component"] = self.component
        return described

    @property
    def name(self) -> str:
        """The label, and which connected component of it (`resolve_all_targets` on a one-label model)."""
        return self.label if self.component is None else f"{self.label} {self.component}"



def _index_of(target: int | str | None, labels: tuple[str, ...]) -> int | None:
    if target is None:
        return None
    if isinstance(target, int | np.integer) or (isinstance(target, str) and target.lstrip("-").isdigit()):
        index = int(target)
        if not 0 <= index < len(labels):
            raise InputError(
                f"target {index} is out of range: the model has {len(labels)} classes "
                f"(0..{len(labels) - 1}: {', '.join(labels)}) — pass one of them to --target"
            )
        return index
    lowered = [label.lower() for label in labels]
    if str(target).lower() not in lowered:
        raise InputError(f"unknown label {target!r}: the model's labels are {', '.join(labels)} — pass one to --target")
    return lowered.index(str(target).lower())


def resolve_target(
    model,
    inputs: torch.Tensor,
    target: int | str | None = None,
    region: torch.Tensor | None = None,
    *,
    pass_fraction: float = 0.5,
    probs: torch.Tensor | None = None,
) -> Target:
    """Decide what to explain from one forward pass on the unperturbed ``inputs`` (1, C, *S).

    Classification: ``target`` (label name or index), default the predicted class. Segmentation: default the
    largest predicted foreground class; ``region`` (bool, model grid) defaults to that class's predicted region.
    ``probs``: the model's prediction on ``inputs`` when the caller has it (no second pass; a full pass of a real
    network at full size takes tens of seconds on a CPU).
    """
    probs = model.predict(inputs) if probs is None else probs
    task = model.infer_task(probs)
    channels = probs.shape[1]
    labels = model.labels_for(channels)
    single = channels == 1
    if task == "classification":
        if probs.ndim != 2:
            raise InputError(f"model output {tuple(probs.shape)} is not (N, C) — set task: segmentation in the card")
        index = _index_of(target, labels)
        if index is None:
            index = int(probs[0, 0] >= model.threshold) if single else int(probs[0].argmax())
        multi_label = model.activation == "sigmoid" and not single
        return ClassTarget(index, labels[index], model.threshold, single_logit=single, multi_label=multi_label)

    if probs.ndim < 3:
        raise InputError(f"model output {tuple(probs.shape)} has no spatial axes — set task: classification")
    label_map = (probs[0, 0] >= model.threshold).long() if single else probs[0].argmax(0)
    index = _index_of(target, labels)
    if index is None:
        counts = torch.bincount(label_map.flatten(), minlength=max(channels, 2))
        counts[0] = 0
        if int(counts.max()) == 0:
            raise InputError("the segmenter predicts no foreground on this image — pass --target and --region")
        index = int(counts.argmax())
    if region is None:
        region = label_map == index
        if not region.any():
            raise InputError(f"the model predicts no '{labels[index]}' voxels — pass --region MASK or another --target")
    region = region.to(probs.device).bool()
    if not region.any():
        raise InputError("the target region is empty — pass a mask with at least one voxel inside the image")
    if bool(region.all()):
        raise InputError("the target region covers the whole image — pass a smaller --region mask")
    made = RegionTarget(index, labels[index], region, single_logit=single, pass_fraction=pass_fraction)
    made.reference_score = float(made.score(probs)[0])
    return made


ALL_TARGETS = "all"
# --target all on a one-label model: at most this many connected components, the largest first.
MAX_COMPONENTS = 16


def outcomes(target: Target, probs: torch.Tensor) -> torch.Tensor:
    """(B, K, ...) probabilities -> (B, 3): each sample's (score, decision holds as 0/1, margin), what every
    mutant is judged by (`certificate.measured`), from probabilities already computed."""
    return torch.stack([target.score(probs).float(), target.passes(probs).float(), target.margin(probs).float()], 1)


def is_all(target: object) -> bool:
    """Whether ``target`` asks for every label (``"all"``, any case)."""
    return isinstance(target, str) and target.lower() == ALL_TARGETS


def resolve_all_targets(model, probs: torch.Tensor, *, pass_fraction: float = 0.5) -> tuple[list[RegionTarget], list[str]]:
    """``--target all``: one `RegionTarget` per foreground label the segmenter predicts in ``probs`` (1, K, *S),
    its predicted region; for a one-label model (one logit, or background and one label) one per connected
    component of that label (26-connected in 3D, largest first, at most `MAX_COMPONENTS`). Also the warnings
    every explanation of the run carries (components left out)."""
    from scipy import ndimage

    if model.infer_task(probs) != "segmentation" or probs.ndim < 3:
        raise InputError("--target all explains every label of a segmentation, and this model is a classifier — "
                         "pass one class with --target (or omit it for the predicted class)")
    channels = probs.shape[1]
    labels = model.labels_for(channels)
    label_map = (probs[0, 0] >= model.threshold).long() if channels == 1 else probs[0].argmax(0)
    present = [index for index in range(1, max(channels, 2)) if bool((label_map == index).any())]
    if not present:
        raise InputError("the segmenter predicts no foreground on this image, so --target all has nothing to explain "
                         "— pass --target and --region")
    regions: list[tuple[int, torch.Tensor, int | None]] = []
    warnings: list[str] = []
    if max(channels, 2) == 2:
        mask = (label_map == 1).cpu().numpy()
        pieces, count = ndimage.label(mask, ndimage.generate_binary_structure(mask.ndim, mask.ndim))
        sizes = np.bincount(pieces.ravel())[1:]
        if count > MAX_COMPONENTS:
            warnings.append(f"--target all explained the {MAX_COMPONENTS} largest of the {count} connected components "
                            f"of '{labels[1]}' (the others hold {int(np.sort(sizes)[:-MAX_COMPONENTS].sum())} voxels)")
        for rank, piece in enumerate(np.argsort(-sizes, kind="stable")[:MAX_COMPONENTS], start=1):
            regions.append((1, torch.from_numpy(pieces == piece + 1).to(probs.device), rank if count > 1 else None))
    else:
        regions = [(index, label_map == index, None) for index in present]
    made = []
    for index, region, component in regions:
        if bool(region.all()):
            raise InputError(f"the predicted '{labels[index]}' covers the whole image — explain it with --region")
        target = RegionTarget(index, labels[index], region, single_logit=channels == 1, pass_fraction=pass_fraction,
                              component=component)
        target.reference_score = float(target.score(probs)[0])
        made.append(target)
    return made, warnings
