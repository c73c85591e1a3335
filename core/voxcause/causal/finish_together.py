"""Every target's explanations, values and certificate from shared passes (``--target all``, after the search).

A segmenter's forward pass gives every label at once, and after the shared search each target's own stages
(extraction, degrees of responsibility, the certificate and its reference canvas) score many images that are
the same for every target — the fully occluded image on each canvas, the real image with nothing removed, the
same controls — besides its own mutants. `finish_together` runs each target's stages unchanged
(`CausalResponsibility.finish`), one thread per target, on a view of the model (`TargetView`) through which
every mutant is scored (`certificate.measured` asks the model's ``measure_target`` where it has one). The views'
batches are gathered round by round — a round closes when every stage still running has asked — and scored
together (`ScoringHub`): each distinct image once, for every target (`multi.SharedScorer.measure_all`), and every image
scored is remembered, so one asked again later, by any target, costs nothing. Each target is answered from
its own image's outcome: exactly what it would have been told scoring alone, so its explanations and
certificate are its own. Only one thread runs the model: the threads wait while the round is scored.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable, Sequence

import torch

from ..certificate import measured
from ..targets import RegionTarget

Measured = list[tuple[float, bool, float]]
MeasureAll = Callable[[torch.Tensor], list[Measured]]  # a batch -> per sample, every target's outcome


def _key(sample: torch.Tensor) -> bytes:
    """A digest of one image's values: two images with the same key are the same mutant."""
    data = sample.detach().contiguous().cpu()
    return hashlib.blake2b(data.view(torch.uint8).numpy().tobytes(), digest_size=20).digest()


class ScoringHub:
    """Scores the batches the targets' stages ask for, together, round by round (module docstring)."""

    def __init__(self, model, targets: Sequence[RegionTarget], measure_all: MeasureAll, running: int) -> None:
        self.model = model
        self.measure_all = measure_all
        self.targets = list(targets)
        self.running = running
        self.asks: dict[int, tuple[object, torch.Tensor]] = {}
        self.answers: dict[int, Measured] = {}
        self.known: dict[bytes, Measured] = {}  # image digest -> every target's (score, holds, margin)
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

    def _score(self, asks: dict[int, tuple[object, torch.Tensor]]) -> dict[int, Measured]:
        """Each distinct new image of the round in one batch, for every target; a target not among the hub's
        (none of the stages asks for one today) is scored on its own."""
        answers: dict[int, Measured] = {}
        keys: dict[int, list[bytes]] = {}
        fresh: dict[bytes, torch.Tensor] = {}
        for slot, (target, batch) in asks.items():
            self.asked += batch.shape[0]
            if not any(target is own for own in self.targets):
                answers[slot] = measured(self.model, target, batch)
                self.scored += batch.shape[0]
                continue
            keys[slot] = [_key(sample) for sample in batch]
            for key, sample in zip(keys[slot], batch, strict=True):
                if key not in self.known:
                    fresh.setdefault(key, sample)
        if fresh:
            outcomes = self.measure_all(torch.stack(list(fresh.values())))
            self.known.update(zip(fresh, outcomes, strict=True))
            self.scored += len(fresh)
        for slot, sample_keys in keys.items():
            index = next(i for i, own in enumerate(self.targets) if own is asks[slot][0])
            answers[slot] = [self.known[key][index] for key in sample_keys]
        return answers


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


def finish_together(explainer, targets: Sequence[RegionTarget], measure_all: MeasureAll,
                    stages: Sequence[Callable[[object, object], object]]) -> tuple[list[object], dict]:
    """Run each target's ``stages(explainer, model)`` (its finishing stages on that explainer and model view)
    in its own thread, every image scored for all ``targets`` at once by ``measure_all``: the results in order, and how many images the targets asked for
    and how many were scored. An error in any target's stages is raised here, after every thread is over."""
    hub = ScoringHub(explainer.model, targets, measure_all, len(stages))
    results: list[object] = [None] * len(stages)
    errors: list[BaseException] = []

    def run(slot: int, stage: Callable[[object, object], object]) -> None:
        try:
            view = TargetView(explainer.model, hub, slot)
            mine = copy.copy(explainer)
            mine.model = view
            results[slot] = stage(mine, view)
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
