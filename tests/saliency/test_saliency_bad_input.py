"""Inputs that must fail with a clear InputError, and hooks/modes that must be restored after a failure."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from voxcause.errors import ErrorCode, InputError
from voxcause.fusion import DualEvidence
from voxcause.models import as_model
from voxcause.saliency import GradCAM, GradCAMPlusPlus, LayerCAM, Occlusion, ScoreCAM, SegGradCAM
from voxcause.saliency._hooks import hook_count
from voxcause.saliency._layers import choose_from_trace, trace_layers
from voxcause.targets import ClassTarget
from voxcause.testing import CauseClassifier, CauseSegmenter, class_target, make_conv_case, region_target

LAYER_METHODS = [GradCAM, GradCAMPlusPlus, ScoreCAM, SegGradCAM, DualEvidence, LayerCAM]


class NoNetwork:
    """What load_model returns for ONNX/TorchScript: forward_raw/predict but ``network = None``."""

    network = None
    device = "cpu"
    batch_size = 16
    forward_passes = 0
    forward_seconds = 0.0

    def forward_raw(self, x):
        return CauseClassifier(2)(x)

    def predict(self, x):
        return torch.softmax(self.forward_raw(x), 1)


@pytest.mark.parametrize("cls", LAYER_METHODS, ids=lambda c: c.__name__)
def test_layer_methods_refuse_models_without_gradients(cls):
    with pytest.raises(InputError, match=r"rex.*occlusion") as refused:
        cls(NoNetwork())
    assert refused.value.code is ErrorCode.NEEDS_NETWORK
    with pytest.raises(InputError, match=r"TorchScript/ONNX"):
        cls(as_model(torch.jit.script(CauseClassifier(2))))


def test_occlusion_accepts_a_model_without_network():
    x, _, _ = make_conv_case(2)
    assert Occlusion(NoNetwork(), cell=10).attribute(x, target=class_target(1)).map.shape == (40, 40)


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus, ScoreCAM], ids=lambda c: c.__name__)
def test_missing_layer_lists_candidates(cls):
    with pytest.raises(InputError, match=r"'features\.conv9'.*features\.conv1, features\.conv2"):
        cls(CauseClassifier(2), layer="features.conv9")


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus, ScoreCAM, Occlusion, DualEvidence], ids=lambda c: c.__name__)
def test_empty_region_is_refused(cls):
    x, _, _ = make_conv_case(2)
    empty = region_target(1, torch.zeros(40, 40, dtype=torch.bool))
    with pytest.raises(InputError, match="region is empty"):
        cls(CauseSegmenter(2)).attribute(x, target=empty)


def test_seggradcam_needs_a_region():
    x, _, _ = make_conv_case(2)
    with pytest.raises(InputError, match="--region"):
        SegGradCAM(CauseClassifier(2)).attribute(x, target=class_target(1))


@pytest.mark.parametrize("bad", [torch.zeros(2, 2, 8, 8), torch.zeros(8, 8), [[0.0]]], ids=["batch2", "2d", "list"])
def test_bad_input_shapes(bad):
    with pytest.raises(InputError, match="inputs must"):
        GradCAM(CauseClassifier(2)).attribute(bad, target=class_target(1))


def test_bad_options():
    with pytest.raises(InputError, match="grid, supervoxels"):
        Occlusion(CauseClassifier(2), regions="hexagons")
    with pytest.raises(InputError, match="one of zero, constant, mean, min, blur, shuffle, scramble or a number"):
        Occlusion(CauseClassifier(2), baseline="purple")
    with pytest.raises(InputError, match="2 entries"):
        Occlusion(CauseClassifier(2), cell=(2, 2, 2)).attribute(make_conv_case(2)[0], target=class_target(1))


class Exploding(ClassTarget):
    def logit_score(self, raw):
        raise RuntimeError("boom in the target")

    def score(self, probs):
        raise RuntimeError("boom in the target")


class ExplodingNet(CauseClassifier):
    def forward(self, x):
        self.features(x)
        raise RuntimeError("boom in the forward")


@pytest.mark.parametrize("cls", [*LAYER_METHODS[:3], DualEvidence, LayerCAM], ids=lambda c: c.__name__)
def test_no_hook_stays_and_modes_are_restored_after_an_error(cls):
    x, _, _ = make_conv_case(2)
    net = CauseClassifier(2)
    net.train()
    net.features.conv2.eval()  # a mixed state must come back exactly
    with pytest.raises(RuntimeError, match="boom"):
        cls(net, layer="features.conv2").attribute(x, target=Exploding(1, "1"))
    assert hook_count(net) == 0
    assert net.training and net.features.training and not net.features.conv2.training
    boom = ExplodingNet(2)  # a bare module runs as a LoadedModel, which reports a failing forward as bad input
    with pytest.raises((RuntimeError, InputError), match="boom in the forward"):
        cls(boom).attribute(x, target=class_target(1))
    assert hook_count(boom) == 0


def test_no_hook_stays_after_success():
    x, _, _ = make_conv_case(2)
    net = CauseClassifier(2)
    net.train()
    for cls in (GradCAM, GradCAMPlusPlus, ScoreCAM, DualEvidence):
        cls(net).attribute(x, target=class_target(1))
    assert hook_count(net) == 0 and net.training


class Pyramid(nn.Module):
    """2D strided convs: 64 -> 32 -> 16 -> 8 -> 4 voxels per axis."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, padding=1)
        self.down = nn.ModuleList([nn.Conv2d(2, 2, 3, stride=2, padding=1) for _ in range(4)])
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        x = self.stem(x)
        for layer in self.down:
            x = torch.relu(layer(x))
        return self.fc(x.mean((2, 3)))


def test_automatic_layer_is_deepest_with_an_eighth_of_the_resolution():
    net = Pyramid()
    layers, output = trace_layers(net, net, torch.zeros(1, 1, 64, 64))
    chosen = choose_from_trace(layers, output, (64, 64), segmentation=False, min_fraction=1 / 8)
    assert (chosen.name, chosen.shape[2:]) == ("down.2", (8, 8))
    assert choose_from_trace(layers, output, (64, 64), segmentation=False, min_fraction=1 / 4).name == "down.1"
    # Grad-CAM on a classifier: the deepest resolution stage keeping 1/4 (its default min_fraction).
    result = GradCAM(net).attribute(torch.rand(1, 1, 64, 64), target=class_target(1))
    assert result.stats["layer"] == "down.1" and result.stats["layer_shape"] == [16, 16]
    assert GradCAM(net, min_fraction=1 / 8).attribute(torch.rand(1, 1, 64, 64), target=class_target(1)).stats[
        "layer_shape"
    ] == [8, 8]
    assert tuple(result.map.shape) == (64, 64)  # upsampled to the model grid
