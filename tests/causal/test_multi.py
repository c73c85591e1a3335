"""``--target all``: every label of a segmentation explained from one shared search (`voxcause.causal.multi`).

The model is `voxcause.testing.LabelSpots`: three labels, each predicted exactly when its own bright ball is
there, beside a decoy of the same brightness no label reads. Each label's map must sit on its own ball, every
certificate must pass, and the shared search must cost far less than three searches.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from voxcause import explain
from voxcause.causal.finish_together import finish_together
from voxcause.causal.multi import SharedScorer, pack
from voxcause.causal.partition import Box
from voxcause.causal.responsibility import Request
from voxcause.certificate import measured
from voxcause.errors import InputError
from voxcause.models.card import SlidingWindow
from voxcause.targets import RegionTarget
from voxcause.testing import loaded, volume_of, write_nifti
from voxcause.testing.known_cause import ball
from voxcause.testing.multi_cause import ChannelSpots, make_multi_case

SIZE = 32


@pytest.fixture(scope="module")
def case():
    return make_multi_case(SIZE)


@pytest.fixture(scope="module")
def every(case):
    with torch.no_grad():
        return explain(volume_of(case.image), model=loaded(case.model, labels=list(case.labels)), target="all", seed=0,
                       progress=False)


def test_each_label_is_explained_by_its_own_object(case, every):
    assert [item.target["label"] for item in every] == ["object 1", "object 2", "object 3"]
    assert every["object 2"] is every[1] and len(every) == 3
    for cause, item in zip(case.causes, every, strict=True):
        values = np.clip(item.map, 0, None)
        peak = np.unravel_index(np.argmax(values), values.shape)
        assert cause[peak], item.target
        assert values[cause].sum() / values.sum() >= 0.8, item.target
        assert values[case.decoy].sum() / values.sum() <= 0.02, item.target
        assert item.certificate["verdict"] == "pass", item.certificate
        assert "searched_alone" not in item.details


def test_the_shared_search_costs_much_less_than_one_search_per_label(case, every):
    model = loaded(case.model, labels=list(case.labels))
    alone = [explain(volume_of(case.image), model=model, target=index, seed=0, progress=False)
             for index in (1, 2, 3)]
    one = [item.stats["forward_passes"] for item in alone]
    total = every.stats["forward_passes"]
    assert all(item.stats["forward_passes"] == total for item in every)  # each summary states the whole run's cost
    # issue 23's target: at most 1.5x the passes of one label. Measured at 32^3, seed 0: 453, 526, 541 alone, 739
    # together (1.46x their mean, 1.37x the dearest); seeds 1 and 2: 1.58x and 1.25x (bench/bench_multi.py).
    assert total <= 1.5 * np.mean(one), (total, one)
    assert total <= 0.55 * sum(one), (total, one)
    shared = every.stats["shared_search"]
    assert shared["images_scored"] < 0.6 * shared["mutants_asked"]
    for single, item in zip(alone, every, strict=True):  # same partitions, same seed: the same ranking here
        top_single = set(np.argsort(single.map.ravel())[-100:])
        top_shared = set(np.argsort(item.map.ravel())[-100:])
        assert len(top_single & top_shared) >= 80


def test_each_label_finishes_on_exactly_its_own_outcomes_and_identical_images_are_scored_once(case, every,
                                                                                           monkeypatch):
    # The same run with each label's explanations, values and certificate scored alone, one label after the other:
    # the shared passes must tell each label exactly what its own passes would.
    monkeypatch.setattr("voxcause.causal.multi.finish_together", _one_at_a_time)
    with torch.no_grad():
        alone = explain(volume_of(case.image), model=loaded(case.model, labels=list(case.labels)), target="all",
                        seed=0, progress=False)
    _assert_same_results(alone, every)
    finishing = every.stats["shared_search"]["finishing"]
    # measured: 105 images asked (35 a label), 94 scored: the same images (fully shown candidates, controls)
    assert finishing["images_scored"] <= finishing["mutants_asked"] - 9, finishing
    assert finishing["forward_passes"] == finishing["images_scored"]
    assert alone.stats["forward_passes"] == every.stats["forward_passes"] + finishing["mutants_asked"] - \
        finishing["images_scored"]


def _one_at_a_time(model, targets, measure_all, stages, *packing):
    """`finish_together` without sharing: each label's stages on the model itself, one label after the other."""
    return [stage(model) for stage in stages], {}


def _assert_same_results(alone, shared) -> None:
    for single, item in zip(alone, shared, strict=True):
        assert np.array_equal(single.map, item.map)
        assert single.masks.keys() == item.masks.keys()
        assert all(np.array_equal(single.masks[key], item.masks[key]) for key in single.masks)
        assert single.certificate == item.certificate


def test_labels_out_of_each_others_reach_finish_in_shared_images_with_their_own_results(monkeypatch):
    # A sliding-window segmenter (16^3 windows) whose two labels sit in opposite corners of a 40^3 image: neither's
    # windows see the other's place, so each label's explanation and certificate mutants are pasted into one
    # image with the other's, and each must still get exactly what it gets from its own images.
    size = 40
    image = (0.2 + 0.05 * np.random.default_rng(0).standard_normal((2, size, size, size))).astype(np.float32)
    for channel, place in enumerate(([8, 8, 8], [31, 31, 31])):
        image[channel, ball((size,) * 3, place, 3.0)] = 1.0
    model = loaded(ChannelSpots(), labels=["background", "object 1", "object 2"], task="segmentation",
                   sliding_window=SlidingWindow(roi_size=(16, 16, 16)))
    with torch.no_grad():
        shared = explain(volume_of(image), model=model, target="all", seed=0, progress=False)
        monkeypatch.setattr("voxcause.causal.multi.finish_together", _one_at_a_time)
        alone = explain(volume_of(image), model=model, target="all", seed=0, progress=False)
    _assert_same_results(alone, shared)
    assert [item.certificate["verdict"] for item in shared] == ["pass", "pass"]
    finishing = shared.stats["shared_search"]["finishing"]
    # measured: 70 images asked (35 a label), 35 scored — every one of them held a mutant of each label
    assert finishing["images_scored"] <= 0.6 * finishing["mutants_asked"], finishing
    assert alone.stats["forward_passes"] - shared.stats["forward_passes"] == \
        finishing["mutants_asked"] - finishing["images_scored"]


def test_an_error_in_one_labels_stages_is_raised_once_the_others_are_over(case):
    model = loaded(case.model, labels=list(case.labels))
    image = torch.from_numpy(case.image)[None]
    targets = [RegionTarget(index, f"object {index}", torch.from_numpy(cause)) for index, cause in
               zip((1, 2), case.causes, strict=False)]
    measured_all = SharedScorer(model, targets, image).measure_all
    finished = []

    def fails(view):
        raise ValueError("stage failed")

    def measures(view):  # asks again after the other label failed: its round must not wait for it
        for _ in range(2):
            finished.append(measured(view, targets[1], image))

    with pytest.raises(ValueError, match="stage failed"):
        finish_together(model, targets, measured_all, [fails, measures])
    alone = measured(model, targets[1], image)[0]  # scored over the labels' union box: the same to float rounding
    assert [[pytest.approx(value, rel=1e-6) for value in outcome[0]] for outcome in finished] == [list(alone)] * 2


def test_identical_mutants_are_scored_once_and_independent_ones_share_an_image():
    root = Box((0, 0, 0), (8, 8, 8))
    left, right = Box((0, 0, 0), (4, 8, 8)), Box((4, 0, 0), (8, 8, 8))
    left_a, left_b = Box((0, 0, 0), (2, 8, 8)), Box((2, 0, 0), (4, 8, 8))
    right_a = Box((4, 0, 0), (6, 8, 8))
    same = Request([()], [[left]], [root])
    mutants, _ = pack({0: same, 1: same}, {})
    assert len(mutants) == 1 and mutants[0].owners == {0: 0, 1: 0}
    independent = {0: Request([(), ()], [[left_a], [left_b]], [left, left]), 1: Request([()], [[right_a]], [right])}
    mutants, _ = pack(independent, {})
    assert len(mutants) == 2 and mutants[0].owners == {0: 0, 1: 0}
    assert set(mutants[0].visible) == {left_a, right_a}
    # a context that shows the other search's split box cannot share its image
    seeing = {0: Request([(right,)], [[left_a]], [left]), 1: Request([()], [[right_a]], [right])}
    assert len(pack(seeing, {})[0]) == 2
    # boxes another search shows inside a split box are fine where that search shows them too: inside each split
    # box the image is exactly its own search's mutant (search 1 splits the root into left_a, left_b and right)
    covered = {0: Request([()], [[left_a]], [left]), 1: Request([()], [[left_a, right]], [root])}
    mutants, _ = pack(covered, {})
    assert len(mutants) == 1 and mutants[0].owners == {0: 0, 1: 0}
    assert len(pack({0: Request([()], [[left_b]], [left]), 1: covered[1]}, {})[0]) == 2  # left_b hidden by 1
    # an image scored before answers a later request for a mutant it showed, where that mutant fits it
    scored = [(0.9, True), (0.1, False)]
    image, _ = pack({0: Request([()], [[left]], [root])}, {})
    known = {frozenset([left]): [(image[0], scored)]}
    mutants, answered = pack({1: same}, known)
    assert not mutants and answered == {(1, 0): scored}
    shared, _ = pack(independent, {})  # left_a beside right_a: answers a later left_a, not while right is split
    known = {shown: [(shared[0], scored)] for _, shown, _ in shared[0].members}
    assert pack({2: Request([()], [[left_a]], [left])}, known)[1] == {(2, 0): scored}
    assert pack({2: Request([()], [[left_a]], [Box((0, 0, 0), (8, 8, 8))])}, known)[1] == {}


def test_only_the_opening_searches_open_images_the_others_ride_where_they_fit():
    root = Box((0, 0, 0), (8, 8, 8))
    left, right = Box((0, 0, 0), (4, 8, 8)), Box((4, 0, 0), (8, 8, 8))
    left_a, right_a = Box((0, 0, 0), (2, 8, 8)), Box((4, 0, 0), (6, 8, 8))
    lead = Request([(), ()], [[left_a], [left]], [left, root])  # the second shows what search 1 splits
    rider = Request([(), ()], [[right_a], [right_a]], [right, right])
    mutants, answered = pack({0: lead, 1: rider}, {}, opening={0})
    assert len(mutants) == 2 and [m.owners for m in mutants] == [{0: 0, 1: 0}, {0: 1}] and not answered
    assert len(pack({0: lead, 1: rider}, {})[0]) == 3  # every search opening: the rider's second gets its own


def test_mutants_outside_each_others_reach_share_an_image_even_where_they_overlap_a_split_box():
    root = Box((0, 0, 0), (16, 8, 8))
    left, right = Box((0, 0, 0), (8, 8, 8)), Box((8, 0, 0), (16, 8, 8))
    right_a = Box((8, 0, 0), (12, 8, 8))
    # search 0 shows the left half and right_a while it splits the right half, inside the box search 1 splits
    requests = {0: Request([(left,)], [[right_a]], [right]), 1: Request([()], [[left]], [root])}
    assert len(pack(requests, {})[0]) == 2
    # that only matters where search 1's target can see it (a sliding-window model's reach): one reading only
    # the far right quarter is told exactly what it would be told alone, so the two share an image
    assert len(pack(requests, {}, {1: Box((12, 0, 0), (16, 8, 8))})[0]) == 1
    assert len(pack(requests, {}, {1: Box((10, 0, 0), (16, 8, 8))})[0]) == 2  # right_a in its reach


def test_one_label_model_explains_each_connected_component():
    case = make_multi_case(24, labels=2)
    network = case.model

    class OneLabel(torch.nn.Module):  # both objects predicted as one label: two components
        def __init__(self) -> None:
            super().__init__()
            self.inner = network

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.inner(x)
            return torch.stack([out[:, 0], out[:, 1:].amax(1)], 1)

    result = explain(volume_of(case.image), model=loaded(OneLabel(), labels=["background", "object"]), target="all",
                     seed=0, progress=False, iterations=4)
    assert [item.target.get("component") for item in result] == [1, 2]
    assert result.folders() == ["object-1", "object-2"]
    regions = [item.masks["target_region"] for item in result]
    assert not (regions[0] & regions[1]).any()
    for item in result:  # each component's map peaks on the ball under its own region
        peak = np.unravel_index(np.argmax(item.map), item.map.shape)
        own = next(cause for cause in case.causes if (cause & item.masks["target_region"]).any())
        assert own[peak]


def test_target_all_refuses_what_it_cannot_do(case):
    from voxcause.testing import make_case

    classifier = make_case("single", size=16)
    with pytest.raises(InputError, match="classifier"):
        explain(volume_of(classifier.image), model=loaded(classifier.model), target="all", progress=False)
    model = loaded(case.model, labels=list(case.labels))
    with pytest.raises(InputError, match="--method rex"):
        explain(volume_of(case.image), model=model, target="all", method="occlusion", progress=False)
    with pytest.raises(InputError, match="drop --region"):
        explain(volume_of(case.image), model=model, target="ALL", region=case.causes[0], progress=False)


def test_cli_writes_a_folder_per_label_and_a_summary(tmp_path):
    case = make_multi_case(24)
    image = write_nifti(case.image[0], tmp_path / "image.nii.gz")
    model = tmp_path / "model.ts"
    torch.jit.script(case.model).save(str(model))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "voxcause", "explain", image, "--model", str(model), "--task", "segmentation",
               "--labels", ",".join(case.labels), "--target", "all", "--iterations", "4", "--threads", "1",
               "--progress", "none", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema"] == "voxcause-targets"
    assert [t["folder"] for t in summary["targets"]] == ["object-1", "object-2", "object-3"]
    assert summary["shared_search"]["targets"] == 3
    for entry in summary["targets"]:
        folder = out / entry["folder"]
        assert {"map.nii.gz", "summary.json", "explanation.seg.nrrd"} <= {p.name for p in folder.iterdir()}
        inner = json.loads((folder / "summary.json").read_text())
        assert inner["target"]["label"] == entry["label"]
        assert inner["certificate"]["verdict"] == entry["certificate"]["verdict"]
    assert "3 targets" in done.stdout and done.stdout.count("certificate") == 3
    from voxcause.findings import make_findings

    with pytest.raises(InputError, match="one explanation per target .*/out/object-1, "):
        make_findings(out)  # findings and report take one explanation folder
    refused = subprocess.run([*command[:-1], str(tmp_path / "refused"), "--method", "occlusion"], capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert not (tmp_path / "refused").exists()


def test_a_batch_row_names_every_target_and_the_worst_verdict(every):
    from voxcause.batch.commands import _summary_fields

    summary = every.summary()
    summary["targets"][1]["certificate"]["verdict"] = "weak"
    fields = _summary_fields(summary)
    assert fields == {"score": None, "forward_passes": every.stats["forward_passes"],
                      "target": "object 1, object 2, object 3", "certificate": "weak"}


def test_a_one_label_model_with_many_components_explains_the_largest_and_says_so():
    from voxcause.targets import MAX_COMPONENTS, resolve_all_targets

    spots = np.zeros((1, 24, 24, 24), dtype=np.float32)
    for k in range(MAX_COMPONENTS + 2):  # separate blobs, the first the largest
        z, y = divmod(k, 5)
        spots[0, 3 * z + 1: 3 * z + 2 + (k == 0), 4 * y + 1: 4 * y + 3, 2: 4] = 1.0

    class Fixed(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logit = torch.from_numpy(spots)[None].expand(x.shape[0], -1, -1, -1, -1) * 20 - 10
            return torch.cat([torch.zeros_like(logit), logit], 1)

    model = loaded(Fixed(), labels=["background", "spot"])
    probs = model.predict(torch.zeros(1, 1, 24, 24, 24))
    targets, warnings = resolve_all_targets(model, probs)
    assert len(targets) == MAX_COMPONENTS and targets[0].component == 1
    assert int(targets[0].region.sum()) == 8 and all(int(t.region.sum()) == 4 for t in targets[1:])
    assert warnings == [f"--target all explained the {MAX_COMPONENTS} largest of the {MAX_COMPONENTS + 2} connected "
                        "components of 'spot' (the others hold 8 voxels)"]


def test_a_whole_image_segmenter_is_searched_on_one_crop_around_every_region_and_certified_on_the_full_image():
    from voxcause.testing.multi_cause import make_channel_case

    case = make_channel_case(64)  # three balls close together: one 48^3 crop holds every region
    result = explain(volume_of(case.image), model=loaded(case.model, labels=list(case.labels)), target="all", seed=0,
                     progress=False, iterations=3)
    for cause, item in zip(case.causes, result, strict=True):
        crop = item.details["crop"]
        assert crop["size"] == [48, 48, 48] and crop["agreement"] <= crop["tolerance"]
        assert "certificate_on_crop" in crop  # the verdict below is the full image's
        assert item.certificate["verdict"] == "pass", item.certificate
        values = np.clip(item.map, 0, None)
        assert cause[np.unravel_index(np.argmax(values), values.shape)]
        assert values[cause].sum() / values.sum() >= 0.6  # at 3 iterations; the lowest measured 0.77


def test_a_label_the_shared_canvas_cannot_remove_is_explained_alone_and_fails_honestly():
    case = make_multi_case(24)
    with torch.no_grad():
        case.model.thresholds[2] = -0.5  # 'object 3' is predicted whatever the image holds
    result = explain(volume_of(case.image), model=loaded(case.model, labels=list(case.labels)), target="all", seed=0,
                     progress=False, iterations=4)
    assert result.stats["shared_search"]["searched_together"] == 2
    assert [item.certificate["verdict"] for item in result] == ["pass", "pass", "fail"]
    alone = result[2]
    assert "shared canvas" in alone.details["searched_alone"]
    assert alone.stats["iterations"]["stopped"] == "undecidable"
    assert any("searched on its own" in warning for warning in alone.stats["warnings"])
