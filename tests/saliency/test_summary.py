"""summary.json for every registered method at 128^3: valid against summary.schema.json, under 100 kB, no
per-voxel data (volumes are files beside it, named in ``volumes``), settings recorded, warnings said."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from voxcause import explain
from voxcause.attribution import Explainer
from voxcause.explainers import available_methods, catalogue, declared_options, explainer_class
from voxcause.explanation import summary_schema, validate_summary
from voxcause.testing import CauseClassifier, CauseSegmenter, loaded, make_conv_case, volume_of

SIZE = 128
SEGMENTATION = {"seggradcam", "dea"}
# Options that keep each method to seconds at 128^3 on one core (the size limit does not depend on them).
FAST = {"rex": {"iterations": 1, "max_explanations": 2}, "occlusion": {"cell": 32}, "dea": {"cell": 32, "n_noise": 1}}


@pytest.fixture(scope="module")
def image():
    x, _, _ = make_conv_case(3, size=SIZE)
    return volume_of(x[0].numpy())


def _model(method: str):
    """The known-cause nets behind a 4x average pool (and, for the segmenter, a 4x upsampling back), so every
    method runs in seconds on a 128^3 grid."""
    pool = torch.nn.AvgPool3d(4)
    if method in SEGMENTATION:
        net = torch.nn.Sequential(pool, CauseSegmenter(3), torch.nn.Upsample(scale_factor=4, mode="trilinear"))
        return loaded(net, task="segmentation", labels=["background", "ball"])
    net = torch.nn.Sequential(pool, CauseClassifier(3))  # the ball fills the same share of the pooled grid
    return loaded(net, task="classification", labels=["no", "yes"])


def _certified(summary: dict) -> dict:
    """Until voxcause.certificate runs in explain() (the lead's), stand in a placeholder for the check."""
    if summary["certificate"] is None:
        try:
            import voxcause.certificate  # noqa: F401
        except ImportError:
            return {**summary, "certificate": {"verdict": "weak", "reason": "not certified yet", "checks": []}}
    return summary


@pytest.mark.parametrize("method", available_methods())
def test_summary_is_small_valid_and_complete(method, image, tmp_path):
    torch.manual_seed(0)
    result = explain(image, model=_model(method), method=method, seed=0, **FAST.get(method, {}))
    out = result.save(tmp_path / method)
    text = (out / "summary.json").read_text()
    assert len(text.encode()) < 100_000, f"{method}: {len(text)} bytes"
    summary = json.loads(text)
    validate_summary(_certified(summary))
    assert summary["method"] == method
    # Every declared option is recorded, with its value (rex: once CausalResponsibility adopts the base).
    if issubclass(explainer_class(method), Explainer):
        names = {option.name for option in declared_options(method) if not option.supplied}
        assert names <= set(summary["params"])
    # Volumes are files beside summary.json, named in it.
    for name, file in summary["volumes"].items():
        assert (out / file).exists(), f"{method}: volume {name} -> {file} missing"
    assert summary["forward_passes"] >= 1


def test_dea_volumes_leave_the_summary():
    x, _, _ = make_conv_case(3, size=64)
    image = volume_of(x[0].numpy())
    result = explain(image, model=_model("dea"), method="dea", seed=0, cell=16, n_noise=1)
    assert set(result.extra_volumes) == {"gradient", "intervention", "stability", "agreement", "weight", "labels",
                                         "probability"}  # the segmenter's own (voxcause.probability)
    for array in result.extra_volumes.values():
        assert array.shape == image.spatial_shape
    summary = result.summary()
    assert not any(key in summary for key in result.extra_volumes)
    assert summary["volumes"]["weight"] == "weight.nii.gz"


def test_a_flat_map_is_said(tmp_path):
    """A model that ignores its input gives Grad-CAM nothing: the map is flat and summary.json says so."""

    class Constant(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv3d(1, 2, 3, padding=1)
            self.fc = torch.nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(self.conv(x).mean((2, 3, 4)) * 0.0)

    image = volume_of(np.random.default_rng(0).standard_normal((1, 16, 16, 16)).astype(np.float32))
    model = loaded(Constant(), task="classification", labels=["a", "b"])
    summary = explain(image, model=model, method="gradcam").summary()
    assert any("flat map" in warning for warning in summary["warnings"])
    assert summary["stats"]["degenerate"] is True


def test_schema_refuses_per_voxel_data_and_missing_blocks():
    import jsonschema

    good = {
        "schema": "voxcause-summary", "schema_version": "1.0.0", "method": "gradcam",
        "target": {"index": 1, "label": "yes", "kind": "class"}, "score": 0.9, "prediction": {},
        "forward_passes": 2, "backward_passes": 1, "seconds": 0.1, "device": "cpu", "version": "0",
        "input": [], "images": [], "model": {}, "params": {"seed": 0}, "warnings": [],
        "certificate": {"verdict": "pass", "reason": "ok", "checks": [
            {"name": "not flat", "value": 1.0, "threshold": 0.0, "passed": True}]},
        "volumes": {"map": "map.nii.gz"}, "stats": {},
    }
    validate_summary(good)
    for bad in (
        {**good, "weight": [[0.0] * 128] * 128},  # a volume slice in the JSON
        {**good, "stats": {"labels": list(range(1000))}},
        {k: v for k, v in good.items() if k != "certificate"},
        {**good, "certificate": {"verdict": "maybe", "reason": "", "checks": []}},
        {**good, "volumes": {"map": "../map.nii.gz"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate_summary(bad)
    assert summary_schema()["$id"].endswith("summary-1.0.0.json")


def test_every_method_declares_its_options_once():
    """Options are declared (never found by reflection at run time) in one frozen dataclass per method; built
    with no options, an explainer holds exactly the declared defaults; each help text is written once in the
    source of the core and the front ends (defaults and bounds live beside it, in the same ``option(...)``)."""
    import ast
    import dataclasses
    from collections import Counter
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    texts = Counter(
        node.value
        for folder in ("core", "monailabel_app", "slicer_extension")
        for path in (root / folder).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )
    for method, entry in catalogue().items():
        cls = explainer_class(method)
        assert dataclasses.is_dataclass(cls.options) and cls.options.__dataclass_params__.frozen, method
        defaults = cls.options()
        for option in declared_options(method):
            assert getattr(defaults, option.name) == option.default, (method, option.name)
            assert option.help and texts[option.help] == 1, (method, option.help)
        assert all(option["help"] for option in entry["options"])


def test_option_bounds_and_choices_are_checked_once_for_every_method():
    from voxcause.errors import ErrorCode, InputError
    from voxcause.explainers import make_explainer
    from voxcause.testing import CauseClassifier

    net = CauseClassifier(2)
    with pytest.raises(InputError, match=r"iterations=0 is outside 1\.\.500") as refused:
        make_explainer("rex", net, {"iterations": 0})
    assert refused.value.code is ErrorCode.BAD_OPTION
    with pytest.raises(InputError, match=r"n_noise=-1 is outside >= 0"):
        make_explainer("dea", net, {"n_noise": -1})
    with pytest.raises(InputError, match=r"cell=0 is outside >= 1 — pass a whole number >= 1 or one per axis"):
        make_explainer("occlusion", net, {"cell": (8, 0)})
    with pytest.raises(InputError, match="score='odds' is not one of auto, log_odds, logit"):
        make_explainer("gradcam", net, {"score": "odds"})
    assert make_explainer("occlusion", net, {"baseline": 0.5, "cell": 4}).params()["baseline"] == 0.5


def test_unknown_option_names_the_accepted_ones(image):
    from voxcause.errors import InputError

    with pytest.raises(InputError, match=r"no option\(s\) cells — its options are regions, cell"):
        explain(image, model=_model("occlusion"), method="occlusion", cells=4)
    with pytest.raises(InputError, match="baseline='purple' is not one of zero, constant, mean, min, blur, shuffle, scramble or a number"):
        explain(image, model=_model("occlusion"), method="occlusion", baseline="purple")
