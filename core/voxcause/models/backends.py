"""Turning a model file or folder into a callable: TorchScript, torch.export, ONNX, MONAI bundles, cards.

Each loader returns ``(callable, eager_network_or_None)``. The callable maps a (B, C, *spatial) float tensor
to the model's raw output (a tensor, a tuple or a dict of tensors). Only eager networks (a card naming a
network, or a MONAI bundle) expose named layers for the gradient methods.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .card import ModelCard, SlidingWindow
from .layout import InputSignature, signature_from_shape
from .trust import build, refused_global

RawModel = Callable[[torch.Tensor], Any]


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def load_torchscript(path: Path, device: str) -> torch.nn.Module:
    try:
        return torch.jit.load(str(path), map_location=device).eval()
    except (RuntimeError, ValueError) as error:
        raise InputError(
            f"model {path} does not load as TorchScript ({_short(error)}) — save it with torch.jit.script/trace, "
            "or write a model card naming the network class and its state dict"
        ) from None


def load_exported(path: Path, device: str) -> torch.nn.Module:
    try:
        program = torch.export.load(str(path))
    except Exception as error:  # torch.export raises many types for a bad archive
        raise InputError(
            f"model {path} does not load as a torch.export program ({_short(error)}) — re-export it"
        ) from None
    return program.module().to(device)  # exported modules are already in inference form (no .eval())


class OnnxRunError(RuntimeError):
    """onnxruntime refused an input (its own exception classes are not RuntimeErrors)."""


class OnnxModel:
    """An onnxruntime session called like a torch module (no gradients).

    Its intra-op thread pool takes torch's thread count (``--threads``, see `set_threads`): left to itself,
    onnxruntime takes every core whatever the user asked for.
    """

    def __init__(self, path: Path, device: str) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise InputError("ONNX models need onnxruntime — pip install 'voxcause[onnx]'") from None
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        providers = (
            ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.startswith("cuda") else ["CPUExecutionProvider"]
        )
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as error:  # onnxruntime raises its own exception classes
            raise InputError(f"model {path} does not load as ONNX ({_short(error)}) — check the file") from None
        self.path = Path(path)  # the file, for a randomised copy (`models.randomize`)
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.input_shape = list(first.shape)
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.fixed_batch = isinstance(self.input_shape[0], int) and self.input_shape[0] == 1
        self.device = device

    @property
    def signature(self) -> InputSignature:
        """Layout, channels and fixed grid as the file's first input declares them."""
        return signature_from_shape(self.input_shape)

    def __call__(self, tensor: torch.Tensor) -> Any:
        array = tensor.detach().float().cpu().numpy()
        batches = [array[i : i + 1] for i in range(len(array))] if self.fixed_batch else [array]
        try:
            results = [self.session.run(self.output_names, {self.input_name: part}) for part in batches]
        except Exception as error:  # onnxruntime's InvalidArgument, Fail, ... derive from Exception only
            raise OnnxRunError(f"onnxruntime: {_short(error)}") from None
        outputs = [
            torch.from_numpy(np.concatenate([r[i] for r in results])).to(tensor.device)
            for i in range(len(self.output_names))
        ]
        if len(outputs) == 1:
            return outputs[0]
        return dict(zip(self.output_names, outputs, strict=True))


def instantiate(spec: dict, where: str = "") -> torch.nn.Module:
    """Build ``{"_target_": "package.Class", **kwargs}`` (the MONAI bundle convention, without references), only
    for trusted network classes, every nested target checked first (`voxcause.models.trust`)."""
    return build(spec, where)


def load_state(network: torch.nn.Module, weights: Path, device: str) -> torch.nn.Module:
    if not Path(weights).is_file():
        raise InputError(f"weights not found: {weights} — check the card's 'weights' path")
    try:
        state = torch.load(str(weights), map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        refused = refused_global(error)
        raise InputError(
            f"weights {weights} hold {refused}, which a weights-only load refuses (a pickle can run code) — save the "
            "network's state_dict with torch.save(model.state_dict(), path)"
            if refused
            else f"weights {weights} are not a torch checkpoint (not a pickle) — check the card's 'weights' path"
        ) from None
    except Exception as error:  # noqa: BLE001 - a non-checkpoint file fails as IndexError, EOFError, KeyError ...
        raise InputError(
            f"weights {weights} are not a torch checkpoint ({type(error).__name__}: {_short(error)}) — check the "
            "'weights' path; save them with torch.save(model.state_dict(), path)"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        network.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise InputError(
            f"weights {weights} do not fit the network ({_short(error)}) — check the card's network"
        ) from None
    return network.to(device).eval()


def load_file(path: Path, device: str) -> tuple[RawModel, torch.nn.Module | None]:
    """Load a bare model file by its suffix."""
    if not path.exists():
        raise InputError(f"model not found: {path} — check the --model path")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return OnnxModel(path, device), None
    if suffix == ".pt2":
        module = load_exported(path, device)
        return module, None
    if suffix in (".ts", ".pt", ".pth", ".jit"):
        module = load_torchscript(path, device)
        return module, None
    raise InputError(
        f"unknown model format {path.name} — use .ts/.pt (TorchScript), .pt2, .onnx, a MONAI bundle folder or a card"
    )


def load_from_card(card: ModelCard, device: str) -> tuple[RawModel, torch.nn.Module | None]:
    """Load what a card names: a model file, or a network plus its state dict."""
    if card.model is not None:
        return load_file(card.model, device)
    where = f" {card.source}" if card.source else ""
    if card.weights is None:
        raise InputError(f"card {card.source} names a network but no 'weights' — add the state-dict file")
    if isinstance(card.weights, tuple):  # several weight files: their mean, as one model
        from .ensemble import MeanEnsemble

        members = [load_state(instantiate(dict(card.network or {}), where), weights, device)
                   for weights in card.weights]
        network = MeanEnsemble(members).to(device).eval()
        return network, network
    network = load_state(instantiate(dict(card.network or {}), where), card.weights, device)
    return network, network


def card_from_bundle(folder: Path) -> tuple[ModelCard, RawModel, torch.nn.Module | None]:
    """Read a MONAI bundle: configs/metadata.json, the inference config's ``network_def``, models/model.pt."""
    metadata_path = folder / "configs" / "metadata.json"
    if not metadata_path.exists():
        raise InputError(f"{folder} is a folder but not a MONAI bundle (no configs/metadata.json) — pass a model file")
    metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    data_format = metadata.get("network_data_format", {})
    inputs = data_format.get("inputs", {}).get("image", {})
    outputs = data_format.get("outputs", {}).get("pred", {})
    channel_def = outputs.get("channel_def") or {}
    labels = tuple(channel_def[k] for k in sorted(channel_def, key=int)) if channel_def else None
    spatial = inputs.get("spatial_shape")
    spatial_size = tuple(int(s) for s in spatial) if spatial and all(isinstance(s, int) for s in spatial) else None
    task = "segmentation" if len(outputs.get("shape", [])) > 2 else ("classification" if outputs.get("shape") else None)
    window = _bundle_sliding_window(folder) if task != "classification" else None
    card = ModelCard(
        name=str(metadata.get("name", folder.name)),
        task=task,
        labels=labels,
        channels=int(inputs["num_channels"]) if "num_channels" in inputs else None,
        # A bundle whose inferer slides windows was trained on patches: keep the image on its own grid.
        spatial_size=None if window else spatial_size,
        sliding_window=window,
        source=folder.resolve(),
    )
    return card, *_bundle_network(folder)


def _inference_config(folder: Path) -> Path | None:
    return next(
        (
            folder / "configs" / name
            for name in ("inference.json", "inference.yaml", "inference.yml")
            if (folder / "configs" / name).exists()
        ),
        None,
    )


def _bundle_sliding_window(folder: Path) -> SlidingWindow | None:
    """The bundle's own ``inferer`` when it is a MONAI ``SlidingWindowInferer`` (roi, overlap, batch, blending)."""
    config = _inference_config(folder)
    if config is None:
        return None
    try:
        from monai.bundle import ConfigParser
        from monai.inferers import SlidingWindowInferer

        parser = ConfigParser()
        parser.read_config(str(config))
        if "SlidingWindowInferer" not in str(parser.get("inferer", {}).get("_target_", "")):
            return None
        inferer = parser.get_parsed_content("inferer")
    except Exception:  # no readable inferer means "not windowed"; the network load reports real errors
        return None
    if not isinstance(inferer, SlidingWindowInferer):
        return None
    return SlidingWindow(
        roi_size=tuple(int(v) for v in inferer.roi_size),
        overlap=float(inferer.overlap if isinstance(inferer.overlap, float | int) else max(inferer.overlap)),
        sw_batch_size=int(inferer.sw_batch_size),
        mode=str(getattr(inferer.mode, "value", inferer.mode)),
    )


def _bundle_network(folder: Path) -> tuple[RawModel, torch.nn.Module | None]:
    """The bundle's ``network_def``: MONAI's ConfigParser imports and calls what the config names (a bundle is
    code by design, unlike a card — README "Security and trust"), then the state dict loads weights-only."""
    config = _inference_config(folder)
    weights = folder / "models" / "model.pt"
    if config is not None and weights.exists():
        try:
            from monai.bundle import ConfigParser
        except ImportError:
            raise InputError("MONAI bundles need monai — pip install 'voxcause[monai]'") from None
        parser = ConfigParser()
        parser.read_config(str(config))
        try:
            network = parser.get_parsed_content("network_def")
        except Exception as error:  # MONAI's parser raises many kinds
            raise InputError(f"bundle {folder}: cannot build network_def ({_short(error)})") from None
        network = load_state(network, weights, "cpu")
        return network, network
    scripted = folder / "models" / "model.ts"
    if scripted.exists():
        module = load_torchscript(scripted, "cpu")
        return module, None
    raise InputError(f"bundle {folder} has neither configs/inference.json + models/model.pt nor models/model.ts")
