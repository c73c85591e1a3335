"""Cards are data: only trusted nn.Module classes are built, and only after every nested target is checked."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from voxcause.errors import InputError
from voxcause.models import load_model
from voxcause.models.card import read_card
from voxcause.models.trust import TRUST_ENV, check_card_targets, load_checkpoint, targets, trust_modules

USER_PACKAGE = '''
import pathlib
import torch

pathlib.Path(__file__).with_name("imported").write_text("yes")


class Net(torch.nn.Module):
    def __init__(self, channels: int = 1):
        super().__init__()
        self.conv = torch.nn.Conv3d(channels, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(x).amax(dim=(2, 3, 4))


def not_a_class(**kwargs):
    pathlib.Path(__file__).with_name("called").write_text("yes")
'''


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    package = tmp_path / "labnets"
    package.mkdir()
    (package / "__init__.py").write_text(USER_PACKAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(TRUST_ENV, raising=False)
    yield package
    sys.modules.pop("labnets", None)


def _card(folder, target: str, **kwargs) -> str:
    torch.save(torch.nn.Conv3d(1, 2, 3, padding=1).state_dict(), folder / "conv.pt")
    state = {f"conv.{key}": value for key, value in torch.load(folder / "conv.pt", weights_only=True).items()}
    torch.save(state, folder / "weights.pt")
    card = folder / "card.json"
    card.write_text(json.dumps({"network": {"_target_": target, **kwargs}, "weights": "weights.pt",
                                "task": "classification"}))
    return str(card)


def test_a_user_package_is_neither_imported_nor_built_until_trusted(user_package, tmp_path, monkeypatch):
    card = _card(tmp_path, "labnets.Net", channels=1)
    with pytest.raises(InputError, match="'labnets.Net', which is not a network class of a trusted package"):
        load_model(card, device="cpu")
    assert not (user_package / "imported").exists(), "an untrusted package is not even imported"
    trust_modules(["labnets"])
    model = load_model(card, device="cpu")
    assert model.network is not None and type(model.network).__name__ == "Net"
    assert (user_package / "imported").exists()


def test_a_trusted_package_still_builds_only_module_classes(user_package, tmp_path, monkeypatch):
    monkeypatch.setenv(TRUST_ENV, "labnets")
    with pytest.raises(InputError, match="'labnets.not_a_class', which is not an nn.Module class"):
        load_model(_card(tmp_path, "labnets.not_a_class"), device="cpu")
    assert not (user_package / "called").exists()


def test_every_nested_target_is_found_and_checked_first():
    spec = {"_target_": "torch.nn.Sequential", "args": [{"_target_": "torch.nn.ReLU"}],
            "x": {"y": [{"_target_": "os.system", "command": "true"}]}}
    assert list(targets(spec)) == ["torch.nn.Sequential", "torch.nn.ReLU", "os.system"]
    with pytest.raises(InputError, match="'os.system'"):
        check_card_targets(spec)


@pytest.mark.parametrize("target", ["os.system", "torchvision_evil.X", "torch", "monai.bundle.ConfigParser",
                                    "voxcause;import os", "__import__", 7])
def test_names_outside_the_allowlist_are_refused_by_name(target):
    with pytest.raises(InputError, match="not a network class of a trusted package"):
        check_card_targets({"_target_": target})


def test_card_paths_stay_in_the_card_folder(tmp_path):
    inner = tmp_path / "cards"
    inner.mkdir()
    (inner / "card.json").write_text(json.dumps({"model": "sub/../model.ts"}))
    assert read_card(inner / "card.json").model == (inner / "model.ts").resolve()
    (inner / "card.json").write_text(json.dumps({"model": "sub/../../model.ts"}))
    with pytest.raises(InputError, match="leaves the card's folder"):
        read_card(inner / "card.json")
    (inner / "card.json").write_text(json.dumps({"model": str(tmp_path / "elsewhere.ts")}))
    assert read_card(inner / "card.json").model == (tmp_path / "elsewhere.ts").resolve(), "absolute paths as written"


def test_checkpoints_load_weights_only_with_numpy_numbers(tmp_path):
    import numpy as np

    torch.save({"weights": torch.ones(2), "best": np.float64(0.5), "epoch": np.int64(3)}, tmp_path / "c.pth")
    loaded = load_checkpoint(tmp_path / "c.pth")
    assert float(loaded["best"]) == 0.5 and int(loaded["epoch"]) == 3
    (tmp_path / "x.pth").write_bytes(b"\x00not a pickle")
    with pytest.raises(InputError, match="is not a torch checkpoint"):
        load_checkpoint(tmp_path / "x.pth")
