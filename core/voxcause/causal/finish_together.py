"""Every target's explanations, values and certificate from shared passes (``--target all``, after the search).

A segmenter's forward pass gives every label at once, and after the shared search each target's own stages
(extraction, degrees of responsibility, the certificate and its reference canvas) score many images that are
the same for every target — the fully occluded image on each canvas, the real image with nothing removed, the
same controls — besides its own mutants. `finish_together` runs each target's stages unchanged
(`CausalResponsibility.finish`), one thread per target, on a view of the model (`TargetView`) through which
every mutant is scored (`certificate.measured` asks the model's ``measure_target`` where it has one). The views'
batches are gathered round by round — a round closes when every stage still running has asked — and scored
together (`ScoringHub`): each distinct image once, for every target (`multi.SharedScorer.measure_all`), and every image
scored is remembered, so one asked again later, by any target, costs nothing. Where the model says which input
a target's output depends on (`mutants.reach`: a sliding-window model's windows), **independent** mutants share
an image too: one target's mutant changes (from the canvas, or from the image itself) only voxels outside the
other's reach, and the other's only voxels outside its own, so both are pasted into one image (the rule of
`multi.pack`: what a target cannot see changes nothing for it). Each target is answered from an image that is,
everywhere it can see, its own mutant: exactly what it would have been told scoring alone, so its
explanations and certificate are its own. Only one thread runs the model: the threads wait while the round is scored.

Why threads: the stages are ordinary call stacks (the extraction's galloping searches, the certificate), and
pasting two targets' independent mutants into one image needs both mutants at once — the targets finished one
after the other with a cache of scored images would share identical images (~11 of 105 passes at 32³ on
`LabelSpots`) but never paste independent ones (half the images on a sliding-window model, `tests/causal/
test_multi.py`); coroutines would mean rewriting every stage.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import torch

from ..certificate import measured
from ..targets import RegionTarget
from .partition import Box, unseen

T = TypeVar("T")
Measured = list[tuple[float, bool, float]]
MeasureAll = Callable[[torch.Tensor], list[Measured]]  # a batch -> per sample, every target's outcome


def _key(sample: torch.Tensor) -> bytes:
    """A digest of one image's values: two images with the same key are the same mutant."""
    data = sample.detach().contiguous().cpu()
    return hashlib.blake2b(data.view(torch.uint8).numpy().tobytes(), digest_size=20).digest()


@dataclass
class _Image:
    """One image of a round: its values, and the mutants it answers — (target, digest, changed box) each; the
    changed box is None for an image scored for every target (not packed)."""

    sample: torch.Tensor
    base: int
    members: list[tuple[int, bytes, Box | None]] = field(default_factory=list)

    def fits(self, target: int, base: int, changed: Box, reaches: Sequence[Box | None]) -> bool:
        """Whether a mutant of ``target`` changing ``changed`` from the same base can be pasted in: each changes
        only voxels the other's target cannot see (outside its `mutants.reach`: `partition.unseen`), and not the
        same voxels."""
        return all(box is not None and other != target and self.base == base and not box.overlaps(changed)
                   and unseen([changed], reaches[other]) and unseen([box], reaches[target])
                   for other, _, box in self.members)


class ScoringHub:
    """Scores the batches the targets' stages ask for, together, round by round (module docstring).

    ``reaches``: each target's `mutants.reach` as a box (None: every voxel may change its output); ``bases``:
    the images mutants are made from (the canvas, the image itself), each (C, *S)."""

    def __init__(self, model, targets: Sequence[RegionTarget], measure_all: MeasureAll, running: int,
                 reaches: Sequence[Box | None] | None = None, bases: Sequence[torch.Tensor] = ()) -> None:
        self.model = model
        self.measure_all = measure_all
        self.targets = list(targets)
        self.reaches = list(reaches) if reaches is not None else [None] * len(self.targets)
        self.bases = list(bases)
        self.running = running
        self.asks: dict[int, tuple[object, torch.Tensor]] = {}
        self.answers: dict[int, Measured] = {}
        self.known: dict[bytes, dict[int, tuple[float, bool, float]]] = {}  # digest -> target -> outcome
        self.asked = 0
        self.scored = 0
        self.condition = threading.Condition()

    def ask(self, slot: int, target, batch: torch.Tensor) -> Measured:
        """(score, holds, margin) of ``target`` for each sample of ``batch``; waits for the round's pass."""
        with self.condition:
            self.asks[slot] = (target, batch)
            self.condition.notify_all()
            self.condition.wait_for(lambda: slot in self.answers)
            return self.answers.pop(slot)

    def leave(self) -> None:
        """A target's stages are over (or failed): rounds no longer wait for it."""
        with self.condition:
            self.running -= 1
            self.condition.notify_all()

    def serve(self) -> None:
        """Score every round until no target's stages are running."""
        while True:
            with self.condition:
                self.condition.wait_for(lambda: len(self.asks) >= self.running)
                if not self.asks:
                    return
                asks, self.asks = self.asks, {}
            answers = self._score(asks)
            with self.condition:
                self.answers.update(answers)
                self.condition.notify_all()

    def _index(self, target) -> int | None:
        return next((index for index, own in enumerate(self.targets) if own is target), None)

    def _score(self, asks: dict[int, tuple[object, torch.Tensor]]) -> dict[int, Measured]:
        """The round's new images (`_pack`) in one batch; each target read from its own image. A target not
        among the hub's (none of the stages asks for one today) is scored on its own."""
        answers: dict[int, Measured] = {}
        keys: dict[int, tuple[int, list[bytes]]] = {}
        fresh: dict[bytes, tuple[torch.Tensor, set[int]]] = {}
        for slot, (target, batch) in asks.items():
            self.asked += batch.shape[0]
            index = self._index(target)
            if index is None:
                answers[slot] = measured(self.model, target, batch)
                self.scored += batch.shape[0]
                continue
            keys[slot] = (index, [_key(sample) for sample in batch])
            for key, sample in zip(keys[slot][1], batch, strict=True):
                if index not in self.known.get(key, {}):
                    fresh.setdefault(key, (sample, set()))[1].add(index)
        images = self._pack(fresh)
        if images:
            outcomes = self.measure_all(torch.stack([image.sample for image in images]))
            self.scored += len(images)
            for image, vector in zip(images, outcomes, strict=True):
                for target, key, box in image.members:
                    known = self.known.setdefault(key, {})
                    known.update({target: vector[target]} if box is not None else dict(enumerate(vector)))
        for slot, (index, sample_keys) in keys.items():
            answers[slot] = [self.known[key][index] for key in sample_keys]
        return answers

    def _pack(self, fresh: dict[bytes, tuple[torch.Tensor, set[int]]]) -> list[_Image]:
        """The images that answer the round's new mutants: a mutant asked by one target with a reach is pasted,
        first fit, into an image it fits (`_Image.fits`); any other is an image of its own, scored for all."""
        images: list[_Image] = []
        for key, (sample, askers) in fresh.items():
            target = min(askers)
            change = self._change(sample) if len(askers) == 1 and self.reaches[target] is not None else None
            if change is None:
                images.append(_Image(sample, -1, [(target, key, None)]))
                continue
            base, box = change
            host = next((image for image in images if image.fits(target, base, box, self.reaches)), None)
            if host is None:
                images.append(_Image(sample, base, [(target, key, box)]))
                continue
            if len(host.members) == 1:
                host.sample = host.sample.clone()  # the asker's buffer is not ours to write
            host.sample[(slice(None), *box.slices())] = sample[(slice(None), *box.slices())]
            host.members.append((target, key, box))
        return images

    def _change(self, sample: torch.Tensor) -> tuple[int, Box] | None:
        """The base ``sample`` differs least from and the box of the voxels it changes; None where it changes
        none (or there is no base)."""
        best: tuple[int, int, torch.Tensor] | None = None
        for index, base in enumerate(self.bases):
            changed = (sample != base).any(0)
            count = int(changed.sum())
            if best is None or count < best[0]:
                best = (count, index, changed)
        if best is None or best[0] == 0:
            return None
        where = best[2].nonzero()
        return best[1], Box(tuple(where.min(0).values.tolist()), tuple((where.max(0).values + 1).tolist()))


class TargetView:
    """The model as one target's stages see it: ``measure_target`` (`certificate.measured`) waits for the hub's round;
    ``forward_passes`` counts the images this target asked for (its stages' own cost, as if alone); everything
    else is the model's."""

    def __init__(self, model, hub: ScoringHub, slot: int) -> None:
        self._model = model
        self._hub = hub
        self._slot = slot
        self.forward_passes = 0

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def measure_target(self, target, batch: torch.Tensor) -> Measured:
        """`certificate.measured` of ``target`` on ``batch``, scored with every other target's round."""
        self.forward_passes += int(batch.shape[0])
        return self._hub.ask(self._slot, target, batch)


def finish_together(model, targets: Sequence[RegionTarget], measure_all: MeasureAll,
                    stages: Sequence[Callable[[TargetView], T]], reaches: Sequence[Box | None] | None = None,
                    bases: Sequence[torch.Tensor] = ()) -> tuple[list[T], dict]:
    """Run each target's ``stages(view)`` (its finishing stages, scoring through its `TargetView` of ``model``)
    in its own thread, every image scored for all ``targets`` at once by ``measure_all``: the results in order,
    and how many images the targets asked for and how many were scored; ``reaches`` and ``bases`` let
    independent mutants share an image (`ScoringHub`). An error in any target's stages is raised here, after
    every thread is over."""
    hub = ScoringHub(model, targets, measure_all, len(stages), reaches, bases)
    results: list = [None] * len(stages)
    errors: list[BaseException] = []

    def run(slot: int, stage: Callable[[TargetView], T]) -> None:
        try:
            results[slot] = stage(TargetView(model, hub, slot))
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)
        finally:
            hub.leave()

    threads = [threading.Thread(target=run, args=(slot, stage), daemon=True) for slot, stage in enumerate(stages)]
    for thread in threads:
        thread.start()
    hub.serve()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results, {"mutants_asked": hub.asked, "images_scored": hub.scored}


__all__ = ["ScoringHub", "TargetView", "finish_together"]
