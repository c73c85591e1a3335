"""Random recursive partitioning of boxes, the search space of causal responsibility.

A box is split into (up to) 4 non-empty children. In 3D two of the three axes are cut, chosen with
probability proportional to their *physical* extent (size x spacing), so a 5 mm-slice MRI is not cut along
its 20-slice axis as often as along its 256-voxel in-plane axes. Cut points are uniform inside the box,
never on its faces, so no child is empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    """Half-open voxel box ``[lo, hi)`` per spatial axis."""

    lo: tuple[int, ...]
    hi: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(h - l for l, h in zip(self.lo, self.hi, strict=True))  # noqa: E741

    @property
    def volume(self) -> int:
        return int(np.prod(self.shape))

    def slices(self) -> tuple[slice, ...]:
        return tuple(slice(l, h) for l, h in zip(self.lo, self.hi, strict=True))  # noqa: E741

    def overlaps(self, other: Box) -> bool:
        """Whether the two boxes share a voxel."""
        return all(lo < other_hi and other_lo < hi
                   for lo, hi, other_lo, other_hi in zip(self.lo, self.hi, other.lo, other.hi, strict=True))

    def meet(self, other: Box) -> Box | None:
        """The box both hold; None when they share no voxel."""
        lo = tuple(max(a, b) for a, b in zip(self.lo, other.lo, strict=True))
        hi = tuple(min(a, b) for a, b in zip(self.hi, other.hi, strict=True))
        return Box(lo, hi) if all(low < high for low, high in zip(lo, hi, strict=True)) else None


def unseen(changes: Iterable[Box], seen: Box | None, own: Iterable[Box] = ()) -> bool:
    """Whether boxes another mutant ``changes`` leave what a reader sees as it is: none holds a voxel of ``seen``
    (None: every voxel) that the reader's own mutant does not change too (``own``, disjoint boxes: parts of one
    partition tree, so a box is covered by them when the volumes of its overlaps with them add up to its own).
    The one rule by which two mutants share an image (``--target all``: `multi.pack`, `finish_together`): each
    reader is told exactly what its own mutant would tell it."""
    own = tuple(own)
    for box in changes:
        inside = box if seen is None else box.meet(seen)
        if inside is None:
            continue
        if sum(meet.volume for mine in own if (meet := inside.meet(mine)) is not None) < inside.volume:
            return False
    return True


def _cut(box: Box, axis: int, point: int) -> tuple[Box, Box]:
    low_hi = list(box.hi)
    low_hi[axis] = point
    high_lo = list(box.lo)
    high_lo[axis] = point
    return Box(box.lo, tuple(low_hi)), Box(tuple(high_lo), box.hi)


def split_box(box: Box, rng: np.random.Generator, spacing: Sequence[float]) -> list[Box]:
    """Split ``box`` into 2–4 non-empty children (4 whenever the box allows it); [] if it cannot be split."""
    extent = np.array(box.shape)
    splittable = np.flatnonzero(extent >= 2)
    if splittable.size == 0:
        return []
    if splittable.size >= 2:
        weights = extent[splittable] * np.asarray(spacing, dtype=float)[splittable]
        axes = rng.choice(splittable, size=2, replace=False, p=weights / weights.sum())
        children = [box]
        for axis in axes:
            point = int(rng.integers(box.lo[axis] + 1, box.hi[axis]))
            children = [part for child in children for part in _cut(child, int(axis), point)]
        return children
    axis = int(splittable[0])
    cuts = min(3, int(extent[axis]) - 1)
    points = np.sort(rng.choice(np.arange(box.lo[axis] + 1, box.hi[axis]), size=cuts, replace=False))
    children, rest = [], box
    for point in points:
        low, rest = _cut(rest, axis, int(point))
        children.append(low)
    children.append(rest)
    return children
