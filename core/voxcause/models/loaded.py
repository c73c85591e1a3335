"""`LoadedModel`: a model plus its card, ready to score batches of (perturbed) inputs.

It owns everything between an image and a probability: moving the image into the model's grid and
normalising it (`prepare`), picking the explained output head, applying the activation, batching, and
counting forward passes — the cost measure every explainer reports.

Throughput options, all kept here so no explainer needs to know about them:

* ``precision``: ``bf16``/``fp16`` run the forward pass under ``torch.autocast`` (fp16 only on CUDA, where it
  is fast and well tested; bf16 also on the CPU). Probabilities are always computed in float32.
* ``compile``: ``torch.compile`` of an eager network, used for the no-grad scoring of mutants only (gradient
  methods hook named layers of the eager module). A compile that fails — at wrap time or on the first call,
  where inductor really compiles — falls back to the eager network with a recorded warning.
* a card's ``inference.sliding_window``: patch-trained segmenters run over the image on its own grid through
  MONAI's ``sliding_window_inference``; ``window_passes`` counts the network calls per window beside
  ``forward_passes`` (whole images scored).
* on CUDA, batches that arrive from the host are staged through one reused pinned buffer and copied
  asynchronously; results stay on the device until the caller asks for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..io import Volume
from .activation import outputs_are_probabilities
from .backends import OnnxModel, RawModel
from .card import ModelCard
from .grid import to_image_grid, to_model_grid
from .layout import CHANNELS_FIRST, CHANNELS_LAST, from_model_layout, layout_name, to_model_layout
from .normalization import normalize
from .windows import Slices, monai_layout, pad_like_monai, reach, shifted, stitch

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


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
        precision: str = "fp32",
        compile: bool = False,
    ) -> None:
        self.raw = raw
        self.card = card
        self.network = network
        self.device = device
        self.batch_size = batch_size or MAX_AUTO_BATCH
        self.auto_batch = batch_size is None
        self.forward_passes = 0
        self.window_passes = 0
        self.forward_seconds = 0.0
        self.warnings: list[str] = []
        self.notes: list[str] = []  # what voxcause read from the model itself (layout, activation)
        self._activation_checked = False
        self.precision = "fp32"
        self.compiled: Callable[[torch.Tensor], Any] | None = None
        self._one_at_a_time = False
        self._staging: torch.Tensor | None = None
        self._staged: Any = None  # CUDA event: the last asynchronous copy out of the staging buffer
        self.configure(precision=precision, compile=compile)

    # ---- speed options --------------------------------------------------------------------------
    def configure(self, *, precision: str | None = None, compile: bool | None = None) -> None:
        """Set the forward pass's precision and/or compile the network (None keeps the current setting)."""
        if precision is not None:
            self.precision = check_precision(precision, self.device, self.raw)
        if compile and self.compiled is None:
            self._compile()
        elif compile is False:
            self.compiled = None

    def _compile(self) -> None:
        compilable = isinstance(self.raw, torch.nn.Module) and not isinstance(self.raw, torch.jit.ScriptModule)
        if not compilable:
            self._warn(
                "--compile applies to eager torch networks (a card naming a network, a MONAI bundle, a .pt2 "
                f"program); this {type(self.raw).__name__} runs uncompiled"
            )
            return
        try:
            self.compiled = torch.compile(self.raw)
        except Exception as error:  # torch.compile raises many kinds (no compiler, unsupported platform, ...)
            self._compile_failed(error)

    def _compile_failed(self, error: BaseException) -> None:
        self.compiled = None
        lines = [line for line in str(error).strip().splitlines() if line.strip()]
        reason = f"{type(error).__name__}: {lines[-1][:160]}" if lines else type(error).__name__
        self._warn(f"torch.compile failed ({reason}); the model runs uncompiled, with the same results")

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    @property
    def sliding_window(self):
        """The card's sliding-window settings (`SlidingWindow`), or None when the whole image is one input."""
        return self.card.sliding_window

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
        signature = getattr(self.raw, "signature", None)
        if signature is not None and signature.spatial_dims not in (None, volume.spatial_dims):
            raise InputError(
                f"model takes {signature.spatial_dims}D input (it declares {self.raw.input_shape}) but the image is "
                f"{volume.spatial_dims}D — use an image of the model's dimension"
            )
        window = self.sliding_window
        if window is not None and len(window.roi_size) != volume.spatial_dims:
            raise InputError(
                f"model takes {len(window.roi_size)}D windows (roi_size {list(window.roi_size)}) but the image is "
                f"{volume.spatial_dims}D — use an image of the model's dimension or fix the card's roi_size"
            )

    def prepare(self, volume: Volume) -> torch.Tensor:
        """(C, *S) image -> (1, C, *S_model) normalised tensor on the model's device."""
        self.check_volume(volume)
        tensor = to_model_grid(volume.array, self.card.spatial_size, self.card.resize)
        array = normalize(tensor[0].numpy(), self.card.normalize)
        if self.auto_batch:
            self.batch_size = auto_batch_size(array.shape, self.device)
        inputs = torch.from_numpy(array)[None].to(self.device)
        self._check_activation(inputs)
        return inputs

    def _check_activation(self, inputs: torch.Tensor) -> None:
        """Once, with no activation given: a model whose outputs are already probabilities is not activated again."""
        if self._activation_checked or self.activation is not None:
            return
        self._activation_checked = True
        if outputs_are_probabilities(self.forward_raw, inputs):
            self.card = self.card.with_overrides(activation="none")
            self.notes.append(
                "the model's outputs are already probabilities (in [0, 1], summing to 1 on the image and on probes): "
                "no softmax applied — set activation in the card or --activation to override"
            )

    def mask_to_model_space(self, mask: np.ndarray) -> torch.Tensor:
        """(*S_image) mask -> (*S_model) bool tensor (nearest neighbour)."""
        tensor = to_model_grid(np.asarray(mask, np.float32)[None], self.card.spatial_size, self.card.resize, order=0)
        return (tensor[0, 0] > 0.5).to(self.device)

    def to_image_space(self, values: torch.Tensor | np.ndarray, volume: Volume, *, order: int = 1) -> np.ndarray:
        """(*S_model) map or mask -> (*S_image) array on the image's voxels."""
        return to_image_grid(values, volume.spatial_shape, self.card.resize, order=order)

    def grid_spacing(self, volume: Volume) -> tuple[float, ...]:
        """Voxel size (mm) of the grid `prepare` puts ``volume`` on (the partition weighs axes by it): the image's
        own spacing, scaled when the card resizes the image into ``spatial_size``."""
        size = self.card.spatial_size
        if size is None or self.card.resize != "resize":
            return volume.spacing
        return tuple(s * n / m for s, n, m in zip(volume.spacing, volume.spatial_shape, size, strict=True))

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

    def forward_raw(self, inputs: torch.Tensor, *, box: Slices | None = None) -> torch.Tensor:
        """Raw output (logits) of the chosen head for a (B, C, *S) batch; differentiable for eager networks.

        Runs under autocast when a lower precision was asked for, and over sliding windows when the card says
        so. Models exported with a fixed batch of 1 (common for torch.export and ONNX files) are detected on the
        first batched call and then fed one sample at a time. ``box`` (spatial slices): only the output inside
        it is returned, (B, K, *box); a sliding-window model runs only the windows overlapping it
        (`voxcause.models.windows`).
        """
        start = time.perf_counter()
        dtype = PRECISIONS[self.precision]
        with torch.autocast(torch.device(self.device).type, dtype=dtype, enabled=dtype is not None):
            if self.sliding_window is not None:
                head = self._windowed(inputs, box)
            else:
                head = self._batched(inputs)
                head = head if box is None else head[(slice(None), slice(None), *box)]
        self.forward_passes += int(inputs.shape[0])
        self.forward_seconds += time.perf_counter() - start
        return head

    def _windowed(self, inputs: torch.Tensor, box: Slices | None = None) -> torch.Tensor:
        """Stitch the network's outputs over overlapping windows (MONAI), counting every window scored; with a
        ``box``, only the windows overlapping it, in MONAI's layout."""
        # Layer-based methods read activations through forward hooks; over windows they would see one patch.
        if self.network is not None and any(module._forward_hooks for module in self.network.modules()):
            raise InputError(
                "layer-based methods see one window at a time on a sliding-window model — use a perturbation "
                "method (--method rex or occlusion), or a card without inference.sliding_window"
            )
        from monai.inferers import sliding_window_inference

        window = self.sliding_window

        def predictor(patches: torch.Tensor) -> torch.Tensor:
            self.window_passes += int(patches.shape[0])
            return self._batched(patches)

        if box is not None:
            layout = self._window_layout(tuple(inputs.shape[2:]), inputs.dtype)
            return stitch(pad_like_monai(inputs, layout), layout.windows, layout.weight, shifted(box, layout.pad),
                          predictor)
        return sliding_window_inference(
            inputs, window.roi_size, window.sw_batch_size, predictor, overlap=window.overlap, mode=window.mode
        )

    def _window_layout(self, shape: tuple[int, ...], dtype: torch.dtype):
        window = self.sliding_window
        return monai_layout(shape, window.roi_size, window.overlap, window.mode, torch.device(self.device), dtype)

    def reach(self, box: Slices, shape: tuple[int, ...]) -> Slices | None:
        """The input voxels that can change this model's output inside ``box`` on an image of spatial ``shape``:
        the windows overlapping it for a sliding-window model; None (the whole image) otherwise."""
        if self.sliding_window is None:
            return None
        layout = self._window_layout(shape, torch.float32)
        return reach(layout.windows, box, layout.pad, shape)

    def _batched(self, inputs: torch.Tensor) -> torch.Tensor:
        if self._one_at_a_time and inputs.shape[0] > 1:
            return torch.cat([self._call(inputs[i : i + 1]) for i in range(inputs.shape[0])])
        try:
            return self._call(inputs)
        except (RuntimeError, AssertionError):
            if inputs.shape[0] == 1:
                raise
            self._one_at_a_time = True
            return torch.cat([self._call(inputs[i : i + 1]) for i in range(inputs.shape[0])])

    @property
    def layout(self) -> str:
        """The model's input layout: the card's or the model file's, else channels-first (PyTorch's)."""
        return self.card.layout or CHANNELS_FIRST

    def _call(self, inputs: torch.Tensor) -> torch.Tensor:
        try:
            output = self._network_output(inputs, self.layout)
        except (RuntimeError, AssertionError) as error:
            if inputs.shape[0] > 1:
                raise
            output = self._probe_channels_last(inputs, error)
        return self._select_head(output)

    def _probe_channels_last(self, inputs: torch.Tensor, error: BaseException) -> Any:
        """A model with no declared layout that fails channels-first is tried channels-last; else one clear error."""
        if self.card.layout is None:
            try:
                output = self._network_output(inputs, CHANNELS_LAST)
            except (RuntimeError, AssertionError):
                pass
            else:
                self.card = self.card.with_overrides(layout=CHANNELS_LAST)
                self.notes.append(
                    "the model takes channels-last input "
                    f"({layout_name(CHANNELS_LAST, inputs.ndim - 2)}: it failed channels-first and ran channels-last)"
                )
                return output
        spatial_dims = inputs.ndim - 2
        shape = tuple(to_model_layout(inputs, self.layout).shape)
        other = CHANNELS_FIRST if self.layout == CHANNELS_LAST else CHANNELS_LAST
        lines = [line for line in str(error).strip().splitlines() if line.strip()]
        declared = getattr(self.raw, "input_shape", None)
        grey = ", --grayscale for a colour picture" if inputs.shape[1] == 3 else ""
        raise InputError(
            f"model failed on {layout_name(self.layout, spatial_dims)} input of shape {shape}"
            f"{f' (it declares {declared})' if declared else ''} "
            f"({lines[-1][:160] if lines else 'error'}) — check the channels, dimension and spatial size it expects "
            f"(--spatial-size, the card's channels{grey}), or its layout (--layout "
            f"{layout_name(other, spatial_dims)} / the card's 'layout: {other}')"
        ) from None

    def _network_output(self, inputs: torch.Tensor, layout: str) -> Any:
        """Run the model on a (B, C, *S) batch in its layout; per-voxel outputs come back as (B, C, *S)."""
        output = self._run(to_model_layout(inputs, layout))
        return from_model_layout(output, layout, inputs.ndim)

    def _run(self, inputs: torch.Tensor) -> Any:
        """The compiled network for no-grad scoring when there is one (else, or on its failure, the eager one)."""
        if self.compiled is not None and not torch.is_grad_enabled():
            try:
                return self.compiled(inputs)
            except Exception as error:  # inductor compiles on the first call: any failure means "run eager"
                self._compile_failed(error)
        return self.raw(inputs)

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
        self,
        inputs: torch.Tensor,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
        *,
        box: Slices | None = None,
    ) -> torch.Tensor:
        """Probabilities of the chosen head for a (B, C, *S) batch, in chunks of ``batch_size``.

        ``reduce`` (e.g. a target's score) is applied per chunk so segmentation maps of a large batch never sit
        in memory together. ``box`` (spatial slices): only the probabilities inside it are computed and
        returned, (B, K, *box) — what a region target reads (`forward_raw`).
        """
        results = []
        for start in range(0, inputs.shape[0], self.batch_size):
            chunk = self._to_device(inputs[start : start + self.batch_size])
            probs = self.activate(self.forward_raw(chunk, box=box))
            results.append(reduce(probs) if reduce is not None else probs)
        return torch.cat(results)

    def _to_device(self, chunk: torch.Tensor) -> torch.Tensor:
        """Move a batch to the model's device; from the host to a GPU through one reused pinned buffer.

        A pageable tensor copied to the GPU is first copied by the driver into pinned memory, synchronously;
        staging it ourselves in a pinned buffer kept across batches makes the transfer asynchronous and saves
        allocating page-locked memory per batch. The buffer is rewritten only after the previous copy out of
        it has finished (a CUDA event). On the CPU this is a no-op.
        """
        target = torch.device(self.device)
        if chunk.device.type == target.type or target.type != "cuda":
            return chunk.to(target)
        count = chunk.numel()
        if self._staging is None or self._staging.numel() < count or self._staging.dtype != chunk.dtype:
            self._staging = torch.empty(count, dtype=chunk.dtype, pin_memory=True)
        elif self._staged is not None:
            self._staged.synchronize()
        host = self._staging[:count].view(chunk.shape)
        host.copy_(chunk)
        moved = host.to(target, non_blocking=True)
        self._staged = torch.cuda.Event()
        self._staged.record()
        return moved

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


def check_precision(precision: str, device: str, raw: RawModel) -> str:
    """``precision`` if this model can run at it on ``device``, else an `InputError` naming the fix."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r} — use --precision fp32, bf16 or fp16")
    if precision == "fp16" and not device.startswith("cuda"):
        raise InputError(
            "--precision fp16 needs a CUDA GPU (CPUs have no fast half-precision convolutions) — use --precision "
            "bf16 on the CPU, or --device cuda"
        )
    if precision != "fp32" and isinstance(raw, OnnxModel):
        raise InputError(
            f"--precision {precision} applies to torch models; an ONNX model runs at the precision it was exported "
            "in — use --precision fp32 (or export the model in half precision)"
        )
    return precision


MAX_AUTO_BATCH = 16
ACTIVATION_FACTOR = 16  # a network's activations take roughly this many copies of its input


UNKNOWN_MEMORY = 4 * 2**30  # what auto_batch_size assumes when the machine cannot say


def auto_batch_size(shape: Sequence[int], device: str) -> int:
    """Mutants per forward call so one batch (inputs and a rough allowance for activations) fits in memory.

    The budget is a quarter of the device's free memory: the GPU's (`torch.cuda.mem_get_info`), or on the CPU
    the memory available to new work (`available_memory`); at most `MAX_AUTO_BATCH`. With 8 GiB available:
    16 at 64^3 and 128^3, 2 at 256^3 for a single-channel volume.
    """
    sample_bytes = 4 * int(np.prod(shape)) * ACTIVATION_FACTOR
    on_gpu = device.startswith("cuda") and torch.cuda.is_available()
    free = torch.cuda.mem_get_info(torch.device(device))[0] if on_gpu else available_memory() or UNKNOWN_MEMORY
    budget = free // 4
    return int(max(1, min(MAX_AUTO_BATCH, budget // max(sample_bytes, 1))))


def available_memory() -> int | None:
    """Bytes of CPU memory available without swapping (Linux ``MemAvailable``, else psutil), or None when
    neither can say. The one reader: the mutant batch (`auto_batch_size`) and the pre-run estimate
    (`voxcause.memory`) both use it."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def resolve_device(device: str | None = "auto") -> str:
    """The torch device a run uses: ``auto`` (or None) is ``cuda`` when a CUDA GPU is visible, else ``cpu``.

    Raises:
        InputError: ``cuda`` asked for where no GPU is visible, or a device name torch does not know.
    """
    name = str(device or "auto").strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError("--device cuda asked for but no CUDA GPU is visible — use --device cpu or auto")
        return name
    if name != "cpu":
        raise InputError(f"unknown device {device!r} — use auto, cpu, cuda or cuda:N")
    return name


def set_threads(threads: int | None) -> None:
    """Give torch and SimpleITK (which default to every core) ``threads`` CPU threads; None leaves them.

    Several processes on one machine (batch workers, or `voxcause explain` beside other work) each running
    all-core thread pools would oversubscribe the CPU; SimpleITK's pool ignores OMP_NUM_THREADS.
    """
    if threads:
        import SimpleITK as sitk

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
