"""Unit tests of the causal engine's parts: ranking search, pruning, partition, batching lanes, occlusion auto
and the shared ops (issue 16: a test per package)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from voxcause.causal.auto import AUTO_ORDER, PROBES, Attempt, attempts, ordered_canvases, probe_boxes
from voxcause.causal.mutants import batch_lanes
from voxcause.causal.partition import Box, split_box, unseen
from voxcause.causal.responsibility import _Part, _resolved_depths
from voxcause.causal.search import prune_components, rank_voxels, smallest_passing
from voxcause.certificate import Certificate
from voxcause.ops import bounding_box, dilate, foreground_mask


def threshold_at(answer: int) -> tuple[list[int], object]:
    """A monotone predicate that passes from ``answer`` on, and the list of every n it was asked about."""
    calls: list[int] = []

    def predicate(ns):
        calls.extend(ns)
        return [n >= answer for n in ns]

    return calls, predicate


@pytest.mark.parametrize("answer,total", [(1, 10), (7, 10), (10, 10), (513, 1000)])
def test_smallest_passing_finds_the_threshold_in_logarithmic_calls(answer, total):
    calls, predicate = threshold_at(answer)
    assert smallest_passing(predicate, total) == answer
    assert len(calls) <= 2 * int(np.ceil(np.log2(total))) + 2


@pytest.mark.parametrize("start,answer", [(300, 300), (300, 301), (300, 340), (1, 513)])
def test_smallest_passing_from_a_known_start_costs_the_log_of_the_distance(start, answer):
    """The contrastive search starts where the sufficient one ended: below ``start`` is never asked."""
    calls, predicate = threshold_at(answer)
    assert smallest_passing(predicate, 1000, start=start) == answer
    assert min(calls) >= start
    assert len(calls) <= 2 * int(np.ceil(np.log2(answer - start + 2))) + 2
    assert smallest_passing(predicate, 1000, start=1001) is None


def test_occlusion_auto_scores_the_later_baselines_only_when_asked():
    """A clean first baseline (loses the decision, fakes nothing) costs its own 9 passes, not 36; the next
    canvas is scored when a retry asks for it, and every baseline comes out once, best first."""
    image = torch.randn(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    occluded = torch.ones(16, 16, 16, dtype=torch.bool)
    scored = []

    def measure(batch):
        scored.append(len(batch))
        return [(0.0, False, -1.0)] * len(batch)

    canvases = ordered_canvases(image, occluded, Box((0, 0, 0), (16, 16, 16)), measure)
    kind, canvas, outcome, *_ = next(canvases)
    assert (kind, outcome, sum(scored)) == ("constant", (0.0, False), PROBES + 1)
    assert torch.equal(canvas, torch.zeros_like(image[0]))
    assert [kind for kind, *_ in canvases] == list(AUTO_ORDER[1:])
    assert sum(scored) == len(AUTO_ORDER) * (PROBES + 1)


def test_occlusion_auto_skips_a_baseline_that_keeps_the_decision():
    image = torch.randn(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    occluded = torch.ones(16, 16, 16, dtype=torch.bool)

    def measure(batch):  # the constant (all-zero) canvas still decides; every other canvas loses it
        return [(1.0, bool((sample == 0).all()), 1.0 if bool((sample == 0).all()) else -1.0) for sample in batch]

    kinds = [kind for kind, *_ in ordered_canvases(image, occluded, Box((0, 0, 0), (16, 16, 16)), measure)]
    assert kinds == ["mean", "min", "blur", "shuffle", "scramble", "constant"]


def test_a_canvas_that_keeps_the_decision_costs_one_pass_and_is_never_searched_again():
    """Its probes could not change the order (it ranks after every canvas that loses the decision), and a retry on
    it could only fail its certificate (occluded_loses_decision): the whole search would be wasted."""
    image = torch.randn(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    occluded = torch.ones(16, 16, 16, dtype=torch.bool)
    scored = []

    def measure(batch):  # only shuffle (and its probes) loses the decision
        scored.append(len(batch))
        return [(0.0, False, -1.0) if len(scored) in (5, 6) else (1.0, True, 1.0) for _ in batch]

    canvases = ordered_canvases(image, occluded, Box((0, 0, 0), (16, 16, 16)), measure, band=0.1)
    first = next(canvases)
    assert first.kind == "shuffle" and scored == [1, 1, 1, 1, 1, PROBES]
    searched = []

    def explain(index, canvas):
        searched.append(canvas.kind)
        return Attempt(canvas.kind, torch.zeros(1), {}, {}, {}, 0, {}, {}, Certificate("fail", "controls", []))

    done = attempts(itertools.chain([first], canvases), explain, band=0.1)
    assert searched == ["shuffle"] and len(done) == 1


def test_occlusion_auto_skips_a_canvas_at_the_threshold():
    """A canvas whose fully occluded image loses the decision by less than the band is ranked like one that
    keeps it: on it, any scrap of image would look sufficient."""
    image = torch.randn(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    occluded = torch.ones(16, 16, 16, dtype=torch.bool)

    def measure(batch):  # constant (all-zero): just below the threshold; the others: clearly below
        return [(0.49, False, -0.001 if bool((sample == 0).all()) else -0.5) for sample in batch]

    first = next(ordered_canvases(image, occluded, Box((0, 0, 0), (16, 16, 16)), measure, band=0.05))
    assert first.kind == "mean"


def test_smallest_passing_none_when_even_everything_fails():
    assert smallest_passing(lambda ns: [False] * len(ns), 50) is None
    assert smallest_passing(lambda ns: [True] * len(ns), 0) is None


def test_rank_voxels_orders_candidates_by_descending_key_and_marks_the_rest():
    key = torch.tensor([[0.1, 0.9], [0.5, 0.7]])
    candidates = torch.tensor([[True, True], [True, False]])
    rank, count = rank_voxels(key, candidates)
    assert count == 3
    assert rank.tolist() == [[2, 0], [1, -1]]


def test_prune_components_drops_blobs_the_decision_does_not_need():
    mask = torch.zeros(12, 12, dtype=torch.bool)
    mask[1:3, 1:3] = True  # needed
    mask[8:10, 8:10] = True  # not needed
    weight = torch.ones(12, 12)
    needed = mask.clone()
    needed[8:10, 8:10] = False
    kept = prune_components(mask, weight, lambda trial: bool(trial[1:3, 1:3].all()))
    assert torch.equal(kept, needed)


def test_split_box_makes_four_disjoint_children_covering_the_box():
    box = Box((0, 0, 0), (10, 12, 14))
    children = split_box(box, np.random.default_rng(0), (1.0, 1.0, 1.0))
    assert len(children) == 4
    cover = torch.zeros(10, 12, 14, dtype=torch.int32)
    for child in children:
        cover[child.slices()] += 1
    assert bool((cover == 1).all())
    assert split_box(Box((0, 0), (1, 1)), np.random.default_rng(0), (1.0, 1.0)) == []


def test_a_change_is_unseen_outside_what_a_reader_sees_or_where_it_changes_the_same_voxels():
    left, right = Box((0, 0), (4, 8)), Box((4, 0), (8, 8))
    left_top, left_bottom = Box((0, 0), (4, 4)), Box((0, 4), (4, 8))
    assert unseen([right], left) and not unseen([right], None)  # None: the reader sees every voxel
    assert not unseen([left], left, own=[left_top])  # half of it shown only by the other change
    assert unseen([left], left, own=[left_top, left_bottom])  # covered by the reader's own disjoint boxes
    assert unseen([Box((0, 0), (8, 4))], left, own=[left_top])  # only its part inside ``seen`` counts
    assert left.meet(right) is None and left.meet(left_top) == left_top


def test_lanes_keep_a_context_in_one_lane_and_fill_every_slot():
    first, second = (Box((0,), (1,)),), (Box((1,), (2,)),)
    contexts = [first] * 6 + [second] * 2
    lanes = batch_lanes(contexts, 4)
    assert sorted(index for lane in lanes for index in lane) == list(range(8))
    assert len(lanes) == 4 and max(map(len, lanes)) == 2  # an even share: full batches
    for lane in lanes:
        assert len({id(contexts[index]) for index in lane}) == 1


def test_resolved_depths_weigh_a_branch_by_its_own_depth():
    root_child = _Part(Box((0,), (8,)), 1.0, 1, None, split=True)
    deep = _Part(Box((0,), (4,)), 1.0, 2, 0, split=True)
    deeper = _Part(Box((0,), (2,)), 1.0, 3, 1)
    twin = _Part(Box((8,), (16,)), 1.0, 1, None)  # never refined: resolved where it stands
    assert _resolved_depths([root_child, deep, deeper, twin]) == [3, 3, 3, 1]


def test_probe_boxes_lie_inside_the_root_with_the_probe_share():
    root = Box((2, 2, 2), (42, 42, 42))
    boxes = probe_boxes(root, np.random.default_rng(0))
    assert len(boxes) == 8
    for box in boxes:
        assert all(r_lo <= lo and hi <= r_hi for lo, hi, r_lo, r_hi in zip(box.lo, box.hi, root.lo, root.hi, strict=True))
        assert 0.02 <= box.volume / root.volume <= 0.08


def test_ops_foreground_box_and_dilation():
    image = torch.zeros(1, 1, 10, 10)
    image[0, 0, 3:6, 4:7] = 1.0
    foreground = foreground_mask(image)
    assert int(foreground.sum()) == 9
    assert bounding_box(foreground, margin=1) == ((2, 3), (7, 8))
    spot = torch.zeros(5, 5, 5, dtype=torch.bool)
    spot[2, 2, 2] = True
    assert int(dilate(spot).sum()) == 27 and int(dilate(spot, 2).sum()) == 125


def test_the_partition_floor_is_in_millimetres():
    """1 mm grids keep the 8-voxel floor; a 0.5 mm grid stops at 2 mm parts (64 voxels), not single voxels; a large
    box stops at 1/2000 of itself."""
    from voxcause.causal.explainer import part_floor

    box = Box((0, 0, 0), (40, 40, 40))
    assert part_floor(box, (1.0, 1.0, 1.0)) == part_floor(box, None) == 32
    assert part_floor(Box((0, 0, 0), (20, 20, 20)), (1.0, 1.0, 1.0)) == 8
    assert part_floor(Box((0, 0, 0), (20, 20, 20)), (0.5, 0.5, 0.5)) == 64
    assert part_floor(Box((0, 0), (20, 20)), (0.25, 0.25)) == 64
    assert part_floor(Box((0, 0, 0), (200, 200, 200)), (0.5, 0.5, 0.5)) == 4000
