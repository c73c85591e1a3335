"""Scoring mutants: the image with some voxels shown and the rest replaced by the canvas, in full batches.

One `MutantScorer` lives for one explanation call. It holds the image, the canvas (the fully occluded image),
the target and a batch buffer on the model's device, and scores mutants described three ways: by boxes (the
partition search), by masks (extraction, degrees of responsibility) and by a ranking's top n (the explanations'
size searches). Every batch slot holds the canvas between mutants, so a box mutant costs the size of its boxes,
not a copy of the volume.
"""

from __future__ import annotations

import math
import resource
from collections.abc import Sequence

import torch

from ..certificate import decisions, measured
from ..typing import Target
from .partition import Box

Outcome = tuple[float, bool]


class MutantScorer:
    """Scores mutants of ``image`` (1, C, *S) for ``target``, ``model.batch_size`` at a time.

    Call `set_canvas` before scoring mutants; `score` scores ready-made (B, C, *S) batches at any time.

    ``band``: the margin (`Target.margin`) by which a mask or ranking mutant must keep the decision to count as
    keeping it — what an explanation is held to (`certificate.KEEP_MARGIN` of the image's margin), so that the
    smallest sufficient set is not one that sits at the threshold. Box mutants (the search) keep plain decisions.
    """

    def __init__(self, model, target: Target, image: torch.Tensor) -> None:
        self.model = model
        self.target = target
        self.image = image[0]
        self.buffer = torch.empty((model.batch_size, *image.shape[1:]), dtype=image.dtype, device=image.device)
        self.canvas: torch.Tensor | None = None
        self.band = 0.0

    def set_canvas(self, canvas: torch.Tensor) -> None:
        """The fully occluded image (C, *S); every batch slot starts as a copy of it."""
        self.canvas = canvas
        self.buffer.copy_(canvas.expand_as(self.buffer))

    def score(self, batch: torch.Tensor) -> list[Outcome]:
        """(target score, decision holds) of each sample of a (B, C, *S) batch."""
        return decisions(self.model, self.target, batch)

    def measure(self, batch: torch.Tensor) -> list[tuple[float, bool, float]]:
        """(target score, decision holds, margin) of each sample of a (B, C, *S) batch (`certificate.measured`)."""
        return measured(self.model, self.target, batch)

    def boxes(self, contexts: list[tuple[Box, ...]], visible: list[list[Box]]) -> list[Outcome]:
        """Score mutants: mutant i shows ``contexts[i]`` and ``visible[i]`` boxes, the rest of the box occluded.

        Slots hold the canvas; boxes are pasted from the image, scored, and restored from the canvas, so a
        mutant costs the size of its boxes, not a copy of the volume. The subsets of one split share their
        context (the siblings of every ancestor: up to one box per level), so they are laid out in one slot
        on consecutive batches: the context is pasted once per split and only the children change.
        """
        slots = self.buffer.shape[0]
        lanes = batch_lanes(contexts, slots)
        results: list[Outcome] = [(0.0, False)] * len(visible)
        shown: list[tuple[tuple[Box, ...], list[tuple], list[tuple]] | None] = [None] * len(lanes)
        for step in range(len(lanes[0]) if lanes else 0):
            active = [lane for lane in lanes if len(lane) > step]  # a prefix: lanes are sorted longest first
            for slot, lane in enumerate(active):
                index = lane[step]
                state = shown[slot]
                if state is not None and state[0] is contexts[index]:
                    context_regions = state[1]
                    self._restore(state[2])
                else:
                    if state is not None:
                        self._restore(state[1] + state[2])
                    context_regions = self._paste(slot, contexts[index])
                shown[slot] = (contexts[index], context_regions, self._paste(slot, visible[index]))
            for slot, outcome in enumerate(self.score(self.buffer[: len(active)])):
                results[active[slot][step]] = outcome
        for state in shown:
            if state is not None:
                self._restore(state[1] + state[2])
        return results

    def masks(self, masks: Sequence[torch.Tensor], *, keep: bool = True) -> list[Outcome]:
        """Score mutants in batches: keep=True shows only each mask (the rest occluded); keep=False occludes it."""
        return [(score, kept) for score, kept, _ in self.measure_masks(masks, keep=keep)]

    def measure_masks(self, masks: Sequence[torch.Tensor], *, keep: bool = True) -> list[tuple[float, bool, float]]:
        """`masks` with each mutant's margin (`Target.margin`) too: (score, kept by the band, margin)."""
        pair = (self.image, self.canvas) if keep else (self.canvas, self.image)
        return self._batched(len(masks), lambda index, out: torch.where(masks[index], *pair, out=out))

    def ranked(self, rank: torch.Tensor, counts: list[int], *, keep: bool) -> list[Outcome]:
        """Mutants along a ranking (int (*S), -1 outside the candidates): keep=True shows the top n of each
        ``counts`` (the other candidates occluded); keep=False occludes the top n and leaves the rest untouched."""
        pair = (self.image, self.canvas) if keep else (self.canvas, self.image)

        def build(index: int, out: torch.Tensor) -> None:
            torch.where((rank >= 0) & (rank < counts[index]), *pair, out=out)

        return [(score, kept) for score, kept, _ in self._batched(len(counts), build)]

    def _batched(self, count: int, build) -> list[tuple[float, bool, float]]:
        """(score, kept by the band, margin) of ``count`` mutants, ``build(index, slot)`` writing mutant ``index``
        into a buffer slot; the slots are reset to the canvas afterwards."""
        outcomes: list[tuple[float, bool, float]] = []
        size = self.buffer.shape[0]
        for start in range(0, count, size):
            chunk = range(start, min(start + size, count))
            for slot, index in enumerate(chunk):
                build(index, self.buffer[slot])
            measured_chunk = self.measure(self.buffer[: len(chunk)])
            outcomes.extend((score, margin >= self.band, margin) for score, _, margin in measured_chunk)
            self.buffer[: len(chunk)].copy_(self.canvas.expand(len(chunk), *self.canvas.shape))
        return outcomes

    def _paste(self, slot: int, boxes) -> list[tuple]:
        regions = [(slot, slice(None), *box.slices()) for box in boxes]
        for region in regions:
            self.buffer[region] = self.image[region[1:]]
        return regions

    def _restore(self, regions: list[tuple]) -> None:
        for region in regions:
            self.buffer[region] = self.canvas[region[1:]]


def reach(model, target: Target, shape: tuple[int, ...]) -> tuple[slice, ...] | None:
    """The input voxels a mutant needs to change for ``target``: a region target on a sliding-window model reads
    only the windows that overlap its box (`LoadedModel.reach`), so nothing outside them can be a cause and the
    search's root box is cut to them; None where every voxel can matter."""
    box = getattr(target, "box", None)
    model_reach = getattr(model, "reach", None)
    return model_reach(box, shape) if box is not None and model_reach is not None else None


def batch_lanes(contexts: list[tuple[Box, ...]], slots: int) -> list[list[int]]:
    """Mutant indices per batch slot, longest lane first: runs of mutants sharing a context stay in one lane.

    Runs are cut to the even share ceil(n / slots) so the batches stay full, then placed longest first on the
    shortest lane (LPT scheduling)."""
    share = max(1, math.ceil(len(contexts) / slots))
    runs: list[list[int]] = []
    for index, context in enumerate(contexts):
        if runs and len(runs[-1]) < share and contexts[runs[-1][-1]] is context:
            runs[-1].append(index)
        else:
            runs.append([index])
    lanes: list[list[int]] = [[] for _ in range(min(slots, len(runs)))]
    for run in sorted(runs, key=len, reverse=True):
        min(lanes, key=len).extend(run)
    return sorted(lanes, key=len, reverse=True)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process so far: allocated on a CUDA device, resident on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


__all__ = ["MutantScorer", "Outcome", "batch_lanes", "peak_memory_mb"]
