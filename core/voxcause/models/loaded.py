"""`LoadedModel`: a model plus its card, ready to score batches of (perturbed) inputs.

It owns everything between an image and a probability: moving the image into the model's grid and
normalising it (`prepare`), picking the explained output head, applying the activation, batching, and
counting forward passes — the cost measure every explainer reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..io import Volume
from .backends import RawModel, card_from_bundle, load_file, load_from_card
from .card import ModelCard, read_card
from .grid import to_image_grid, to_model_grid
from .normalization import normalize


class LoadedModel:
    """A model ready for explanation; see `load_model`."""

    def __init__(
        self,
        raw: RawModel,
        card: ModelCard,
        *,
        network: torch.nn.Module | None,
        device: str,
        batch_size: int | None = None,
    ) -> None:
        self.raw = raw
        self.card = card
        self.network = network
        self.device = device
        self.batch_size = batch_size or MAX_AUTO_BATCH
        self.auto_batch = batch_size is None
        self.forward_passes = 0
        self.backward_passes = 0
        self.forward_seconds = 0.0
        self._head_names: list[str] | None = None
        self._one_at_a_time = False

    # ---- image <-> model grid -------------------------------------------------------------------
    def check_volume(self, volume: Volume) -> None:
        """Fail early, naming the fix, when the image cannot be what the model takes."""
        expected = self.card.channel_count
        if expected is not None and volume.channels != expected:
            names = f" ({', '.join(self.card.channels)})" if isinstance(self.card.channels, tuple) else ""
            raise InputError(
                f"model expects {expected} input channel(s){names} but the image has {volume.channels} — pass one "
                "image file per channel, or fix 'channels' in the model card"
            )
        size = self.card.spatial_size
        if size is not None and len(size) != volume.spatial_dims:
            raise InputError(
                f"model takes {len(size)}D input (spatial_size {list(size)}) but the image is {volume.spatial_dims}D — "
                "use an image of the model's dimension or fix --spatial-size / the card's 'spatial_size'"
            )

    def prepare(self, volume: Volume) -> torch.Tensor:
        """(C, *S) image -> (1, C, *S_model) normalised tensor on the model's device."""
        self.check_volume(volume)
        tensor = to_model_grid(volume.array, self.card.spatial_size, self.card.resize)
        array = normalize(tensor[0].numpy(), self.card.normalize)
        if self.auto_batch:
            self.batch_size = auto_batch_size(array.shape, self.device)
        return torch.from_numpy(array)[None].to(self.device)

    def mask_to_model_space(self, mask: np.ndarray) -> torch.Tensor:
        """(*S_image) mask -> (*S_model) bool tensor (nearest neighbour)."""
        tensor = to_model_grid(np.asarray(mask, np.float32)[None], self.card.spatial_size, self.card.resize, order=0)
        return (tensor[0, 0] > 0.5).to(self.device)

    def to_image_space(self, values: torch.Tensor | np.ndarray, volume: Volume, *, order: int = 1) -> np.ndarray:
        """(*S_model) map or mask -> (*S_image) array on the image's voxels."""
        return to_image_grid(values, volume.spatial_shape, self.card.resize, order=order)

    # ---- running the model ----------------------------------------------------------------------
    def _select_head(self, output: Any) -> torch.Tensor:
        if isinstance(output, torch.Tensor):
            return output
        if isinstance(output, dict):
            names = [str(k) for k in output]
            choice = self.card.output if self.card.output is not None else names[0]
            key = names[int(choice)] if isinstance(choice, int) or str(choice).isdigit() else str(choice)
            if key not in names:
                raise InputError(f"model has no output {choice!r}; its outputs are {names} — choose one with --output")
            self._head_names = names
            return output[key]
        if isinstance(output, Sequence):
            names = [str(i) for i in range(len(output))]
            choice = self.card.output if self.card.output is not None else 0
            if isinstance(choice, str) and choice in self.card.heads:
                choice = list(self.card.heads).index(choice)
            try:
                index = int(choice)
                selected = output[index]
            except (ValueError, IndexError):
                raise InputError(f"model has outputs {names}; --output {choice!r} is not one of them") from None
            self._head_names = list(self.card.heads) or names
            return selected
        raise InputError(f"model returned {type(output).__name__} — voxcause needs a tensor, tuple or dict of tensors")

    @property
    def head_card(self):
        """The card entry of the chosen head (models with several outputs), if the card has one."""
        if not self.card.heads:
            return None
        choice = self.card.output if self.card.output is not None else next(iter(self.card.heads))
        if isinstance(choice, int) or str(choice).isdigit():
            choice = list(self.card.heads)[int(choice)]
        return self.card.heads.get(str(choice))

    def forward_raw(self, inputs: torch.Tensor) -> torch.Tensor:
        """Raw output (logits) of the chosen head for a (B, C, *S) batch; differentiable for eager networks.

        Models exported with a fixed batch of 1 (common for torch.export and ONNX files) are detected on the
        first batched call and then fed one sample at a time.
        """
        start = time.perf_counter()
        if self._one_at_a_time and inputs.shape[0] > 1:
            head = torch.cat([self._call(inputs[i : i + 1]) for i in range(inputs.shape[0])])
        else:
            try:
                head = self._call(inputs)
            except (RuntimeError, AssertionError):
                if inputs.shape[0] == 1:
                    raise
                self._one_at_a_time = True
                head = torch.cat([self._call(inputs[i : i + 1]) for i in range(inputs.shape[0])])
        self.forward_passes += int(inputs.shape[0])
        self.forward_seconds += time.perf_counter() - start
        return head

    def _call(self, inputs: torch.Tensor) -> torch.Tensor:
        try:
            output = self.raw(inputs)
        except (RuntimeError, AssertionError) as error:
            if inputs.shape[0] > 1:
                raise
            lines = [line for line in str(error).strip().splitlines() if line.strip()]
            raise InputError(
                f"model failed on input of shape {tuple(inputs.shape)} ({lines[-1][:160] if lines else 'error'}) — "
                "check the channels, dimension and spatial size it expects (--spatial-size, model card)"
            ) from None
        return self._select_head(output)

    @property
    def activation(self) -> str | None:
        head = self.head_card
        return (head.activation if head and head.activation else None) or self.card.activation

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits -> probabilities: the card's activation, else softmax for C>1 and sigmoid for C=1."""
        activation = self.activation or ("softmax" if logits.shape[1] > 1 else "sigmoid")
        if activation == "softmax":
            if logits.shape[1] == 1:
                raise InputError("softmax over a single output channel always gives 1 — set activation: sigmoid")
            return torch.softmax(logits.float(), dim=1)
        if activation == "sigmoid":
            return torch.sigmoid(logits.float())
        return logits.float()

    @torch.no_grad()
    def predict(
        self, inputs: torch.Tensor, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Probabilities of the chosen head for a (B, C, *S) batch, in chunks of ``batch_size``.

        ``reduce`` (e.g. a target's score) is applied per chunk so segmentation maps of a large batch never sit
        in memory together.
        """
        results = []
        for start in range(0, inputs.shape[0], self.batch_size):
            chunk = inputs[start : start + self.batch_size].to(self.device, non_blocking=True)
            probs = self.activate(self.forward_raw(chunk))
            results.append(reduce(probs) if reduce is not None else probs)
        return torch.cat(results)

    def infer_task(self, output: torch.Tensor) -> str:
        head = self.head_card
        task = (head.task if head and head.task else None) or self.card.task
        return task or ("classification" if output.ndim == 2 else "segmentation")

    def labels_for(self, channels: int) -> tuple[str, ...]:
        """Label names of the chosen head; a single sigmoid logit has two (negative, positive)."""
        head = self.head_card
        labels = (head.labels if head and head.labels else None) or self.card.labels
        if labels:
            return tuple(labels)
        return ("negative", "positive") if channels == 1 else tuple(str(i) for i in range(channels))

    @property
    def threshold(self) -> float:
        head = self.head_card
        return head.threshold if head else self.card.threshold


MAX_AUTO_BATCH = 16
ACTIVATION_FACTOR = 16  # a network's activations take roughly this many copies of its input


def auto_batch_size(shape: Sequence[int], device: str) -> int:
    """Mutants per forward call so one batch (inputs and a rough allowance for activations) fits in memory.

    The budget is a quarter of the free GPU memory, or 1 GiB on the CPU: 16 at 64³, 8 at 128³, 1 at 256³
    for a single-channel volume.
    """
    sample_bytes = 4 * int(np.prod(shape)) * ACTIVATION_FACTOR
    budget = torch.cuda.mem_get_info()[0] // 4 if device.startswith("cuda") and torch.cuda.is_available() else 2 ** 30
    return int(max(1, min(MAX_AUTO_BATCH, budget // max(sample_bytes, 1))))


def load_model(
    path: str | Path,
    *,
    task: str | None = None,
    labels: Sequence[str] | None = None,
    channels: int | Sequence[str] | None = None,
    spatial_size: Sequence[int] | None = None,
    normalize: Any = None,
    activation: str | None = None,
    output: str | int | None = None,
    device: str = "cpu",
    batch_size: int | None = None,
) -> LoadedModel:
    """Load a model for explanation.

    Args:
        path: a TorchScript file (``.ts``/``.pt``/``.pth``), a ``.pt2`` exported program, an ``.onnx`` file, a
            MONAI bundle folder, or a model card (``.json``/``.yaml``) naming one of these or a network.
        task, labels, channels, spatial_size, normalize, activation, output: override the card (or give
            bare files what they lack). ``output`` picks the head of a model with several outputs.
        device: ``"cpu"`` or ``"cuda"``.
        batch_size: mutants per forward call (default: chosen from the volume size and free memory).

    Example:
        >>> model = load_model("core/voxcause/samples/models/classifier3d/card.json")  # doctest: +SKIP
    """
    source = Path(path)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda asked for but no CUDA GPU is visible — use --device cpu")
    if not source.exists():
        raise InputError(f"model not found: {source} — check the --model path")
    if source.is_dir():
        card, raw, network = card_from_bundle(source)
    elif source.suffix.lower() in (".json", ".yaml", ".yml"):
        card = read_card(source)
        raw, network = load_from_card(card, device)
    else:
        raw, network = load_file(source, device)
        card = ModelCard(name=source.stem, source=source.resolve())
    if network is not None:
        raw = network.to(device).eval()
    if isinstance(channels, Sequence) and not isinstance(channels, str):
        channels = tuple(channels)
    card = card.with_overrides(
        task=task,
        labels=labels,
        channels=channels,
        spatial_size=spatial_size,
        normalize=normalize,
        activation=activation,
        output=output,
    )
    return LoadedModel(raw, card, network=network, device=device, batch_size=batch_size)
