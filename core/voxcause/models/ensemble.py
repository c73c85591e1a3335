"""A card naming several weight files: the same network once per file, averaged as one model.

``weights: [fold0.pt, fold1.pt, ...]`` in a model card builds the card's network once per file and scores the
mean of their raw outputs (logits), as nnU-Net ensembles its folds; the explanation explains that mean. Its
members stay reachable, one at a time (`MeanEnsemble.only`), so `voxcause.probability` can write how much they
disagree (``uncertainty.nii.gz``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from ..errors import InputError


class MeanEnsemble(torch.nn.Module):
    """The mean of ``members``' tensor outputs (logits), for a (B, C, *S) batch."""

    def __init__(self, members: Sequence[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self._active: list[int] = list(range(len(members)))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = [self.members[index](inputs) for index in self._active]
        if not all(isinstance(output, torch.Tensor) for output in outputs):
            raise InputError("a card with several weights ensembles networks that return one tensor — give "
                             "a network with a single output, or one weights file")
        return torch.stack(outputs).mean(0)

    @contextmanager
    def only(self, index: int) -> Iterator[None]:
        """Score with member ``index`` alone, the whole ensemble again after."""
        active = self._active
        self._active = [index]
        try:
            yield
        finally:
            self._active = active
