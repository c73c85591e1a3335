"""Copies of a model with the parameters of its top layers (or all of them) replaced by random values.

The model-parameter randomisation test (Adebayo et al., "Sanity checks for saliency maps", 2018) asks whether an
explanation changes when the model it explains is destroyed; `voxcause.evaluate.sanity` runs it. What "a layer"
is depends on the format: for torch models (eager, TorchScript, MONAI bundles, every fold of an nnU-Net
ensemble) a module that owns parameters, in registration order (input side first); for ONNX the weight and bias
initialisers of each Conv/ConvTranspose/Gemm/MatMul node, in graph order. The top ``fraction`` of those layers get
Gaussian values of the original tensor's spread (so activations keep their scale and the copy still computes);
the original model is never touched. Seeds are per layer, so the cascade's steps nest: the top third randomised at
one step is randomised identically at the next.
"""

from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from .backends import OnnxModel
from .loaded import LoadedModel

#: ONNX node types whose initialisers are learned layers.
ONNX_LAYERS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


def _random_like(values: np.ndarray, seed: int, layer: int) -> np.ndarray:
    spread = float(values.std()) or 0.01
    return np.random.default_rng([seed, layer]).normal(0.0, spread, values.shape).astype(values.dtype)


def _top(count: int, fraction: float) -> int:
    return min(count, max(1, math.ceil(fraction * count))) if fraction > 0 else 0


def torch_layers(network: torch.nn.Module) -> list[torch.nn.Module]:
    """Modules owning parameters directly, input side first (registration order)."""
    return [module for _, module in network.named_modules() if any(True for _ in module.parameters(recurse=False))]


@torch.no_grad()
def _randomize_torch(network: torch.nn.Module, fraction: float, seed: int) -> int:
    layers = torch_layers(network)
    chosen = _top(len(layers), fraction)
    for index in range(len(layers) - chosen, len(layers)):
        for parameter in layers[index].parameters(recurse=False):
            values = parameter.detach().float().cpu().numpy()
            parameter.copy_(torch.from_numpy(_random_like(values, seed, index)).to(parameter.dtype))
    return chosen


def onnx_layers(graph) -> list[list[str]]:
    """Initialiser names per learned node (Conv, Gemm, ...), input side first."""
    initialisers = {tensor.name for tensor in graph.initializer}
    return [
        [name for name in node.input if name in initialisers]
        for node in graph.node
        if node.op_type in ONNX_LAYERS and any(name in initialisers for name in node.input)
    ]


def _randomized_onnx(model: LoadedModel, fraction: float, seed: int, folder: Path) -> tuple[OnnxModel, int]:
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(model.raw.path))
    layers = onnx_layers(proto.graph)
    chosen = _top(len(layers), fraction)
    replaced = {}
    for index in range(len(layers) - chosen, len(layers)):
        for name in layers[index]:
            replaced[name] = index
    for tensor in proto.graph.initializer:
        if tensor.name in replaced:
            values = numpy_helper.to_array(tensor)
            if values.dtype.kind == "f":
                tensor.CopyFrom(numpy_helper.from_array(_random_like(values, seed, replaced[tensor.name]), tensor.name))
    path = folder / f"randomized_{fraction:.3f}.onnx"
    onnx.save(proto, str(path))
    return OnnxModel(path, model.device), chosen


def layer_count(model: LoadedModel) -> int:
    """How many layers `randomized` can randomise (0: a model it cannot open)."""
    if isinstance(model.raw, OnnxModel):
        import onnx

        return len(onnx_layers(onnx.load(str(model.raw.path)).graph))
    networks = _networks(model)
    return len(torch_layers(networks[0])) if networks else 0


def _networks(model: LoadedModel) -> list[torch.nn.Module]:
    unique = {id(n): n for n in (model.raw, model.network) if isinstance(n, torch.nn.Module)}
    return list(unique.values())


def _randomized_folds(network: torch.nn.Module, folds: list[dict], fraction: float, seed: int) -> list[dict]:
    """Each fold's weights (an nnU-Net ensemble: one network, the folds' state dicts swapped in) randomised in
    ``network`` (a copy), kept on the CPU like the originals, which stay untouched."""
    randomised = []
    for state in folds:
        network.load_state_dict(state)
        _randomize_torch(network, fraction, seed)
        randomised.append({name: tensor.detach().cpu().clone() for name, tensor in network.state_dict().items()})
    return randomised


def randomized(model: LoadedModel, fraction: float, *, seed: int = 0, workdir: Path | None = None) -> LoadedModel:
    """A copy of ``model`` whose top ``fraction`` of layers (1.0: all) hold random parameters.

    Args:
        workdir: where a randomised ONNX file is written (a temporary folder by default); it must outlive the copy.

    Raises:
        InputError: a model with no parameters voxcause can reach (e.g. a torch.export program).
    """
    clone = copy.copy(model)
    clone.forward_passes = clone.window_passes = 0
    clone.forward_seconds = 0.0
    clone.compiled = None
    clone.notes, clone.warnings = list(model.notes), list(model.warnings)
    clone._staging = clone._staged = None
    if isinstance(model.raw, OnnxModel):
        folder = workdir or Path(tempfile.mkdtemp(prefix="voxcause-sanity-"))
        clone.raw, chosen = _randomized_onnx(model, fraction, seed, folder)
    else:
        networks = _networks(model)
        if not networks or not torch_layers(networks[0]):
            raise InputError(
                "this model exposes no parameters to randomise (a torch.export program?) — run the sanity check on "
                "the TorchScript or ONNX file, a card naming the network, a MONAI bundle or an nnU-Net folder"
            )
        memo: dict = {}
        copies = copy.deepcopy(networks, memo)
        for network in copies:
            chosen = _randomize_torch(network, fraction, seed)
        clone.raw = memo.get(id(model.raw), model.raw)
        clone.network = memo.get(id(model.network), model.network) if model.network is not None else None
        if getattr(model, "fold_weights", None):
            clone.fold_weights = _randomized_folds(clone.network, model.fold_weights, fraction, seed)
    clone.notes.append(f"top {chosen} layer(s) randomised (sanity check, seed {seed})")
    return clone
