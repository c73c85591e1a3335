"""What one split of the partition search knows of its children's subsets, and which to score next.

A split has up to 4 children; a subset is a bitmask of them (`subset_members`). ReX's credit rule needs only the
smallest passing subsets, and when the decision is monotone in what is shown most subsets follow from a few
scored ones (`Split`). `voxcause.causal.responsibility` scores what `Split` asks for.
"""

from __future__ import annotations

import math

import numpy as np

from .mutants import Outcome


def subset_masks(count: int) -> range:
    """Bitmasks of the subsets evaluated for ``count`` children: all but the full set (the parent, known to pass)."""
    return range(0, (1 << count) - 1)


def subset_members(bits: int, count: int) -> list[int]:
    """The children in subset ``bits``."""
    return [i for i in range(count) if bits >> i & 1]


class Split:
    """What is known of one split's subsets (bitmasks of its ``count`` children): ``scored`` outcomes, and what
    follows from them if the decision is monotone in what is shown — a superset of a passing subset passes, a
    subset of a failing one fails (the full set is the parent mutant, known to pass).

    ReX's rule needs the smallest passing size s, every passing subset of that size scored (the descent breaks
    ties by score) and every other subset of size at most s known to fail; that is what `table` hands on, the
    same as when every subset up to size s is scored, so for a monotone decision the credit and the descent do
    not depend on the order. Scoring by size (`next_size`) costs 4 passes when a child alone passes, 10 when a
    pair is needed, 14 for a triple. A good guess is cheaper (`guess`): if child x passes alone and the full set
    without x fails, every subset without x fails (it lies in that one), so {x} is the only smallest passing
    subset — 2 passes. A wrong guess costs its 2 on top, and what they showed still spares later passes: when
    x fails alone and the full set without it passes, x is not needed and the next child by the prior is
    guessed (4 passes when that one is right, instead of 5 by size after the miss); when both fail, x is needed
    in every passing subset, and only the pairs with x are scored next (5 passes for a pair instead of 10, 8 for
    a triple instead of 14). At 64^3 on bench/bench_causal.py's cases the child with the most of the prior's
    mass was the one at 384 of the 436 splits where exactly one child passed alone. Growing the guess to pairs
    and triples (while the guessed children prove needed but not enough) saved 3 points more of those cases'
    passes, but a shared run (``--target all``, `voxcause.causal.multi`) gained less from it than one label.
    """

    def __init__(self, count: int, empty: Outcome, weights: list[float] | None = None) -> None:
        self.count = count
        self.full = (1 << count) - 1
        self.scored: dict[int, Outcome] = {0: empty}
        # the children the prior puts mass in, most first: the order of the guesses
        self.order = [int(child) for child in np.argsort(weights, kind="stable")[::-1] if weights[child] > 0] \
            if weights is not None and count > 1 else []

    def known(self, bits: int) -> bool | None:
        """Whether subset ``bits`` passes, scored or inferred; None when nothing scored so far decides it."""
        if bits in self.scored:
            return self.scored[bits][1]
        if bits == self.full or any(ok and seen & bits == seen for seen, (_, ok) in self.scored.items()):
            return True
        if any(not ok and seen & bits == bits for seen, (_, ok) in self.scored.items()):
            return False
        return None

    def guess(self) -> list[int]:
        """The subsets to score next while guessing: the next child by the prior's mass, alone, and the full set
        without it. The guess moves on to the following child only while the last one proved not needed (it
        failed alone and the full set without it passed); [] once a guess passed or proved needed, or no child
        with prior mass is left."""
        for child in self.order:
            alone, without = 1 << child, self.full & ~(1 << child)
            asks = [bits for bits in (alone, without) if self.known(bits) is None]
            if asks:
                return asks
            if self.known(alone) or not self.known(without):
                return []
        return []

    def _sizes(self) -> list[list[int]]:
        return [[bits for bits in range(1, self.full) if bin(bits).count("1") == size] for size in range(1, self.count)]

    def next_size(self) -> list[int]:
        """The undecided subsets of the smallest size not yet settled; [] once the smallest passing size is."""
        for subsets in self._sizes():
            states = [self.known(bits) for bits in subsets]
            if None in states:
                return [bits for bits, state in zip(subsets, states, strict=True) if state is None]
            if any(states):
                return []
        return []

    def table(self) -> dict[int, Outcome]:
        """Every subset up to the smallest passing size: scored outcomes, the inferred failures as (-inf, False)."""
        table = {0: self.scored[0]}
        for subsets in self._sizes():
            for bits in subsets:
                table[bits] = self.scored.get(bits, (-math.inf, False))
            if any(self.known(bits) for bits in subsets):
                break
        return table


__all__ = ["Split", "subset_masks", "subset_members"]
