"""Trained nnU-Net v2 models: the results folder ``nnUNetv2_train`` writes, explained as nnU-Net runs it.

A folder such as ``nnUNet_results/Dataset500_Spheres/nnUNetTrainer__nnUNetPlans__3d_fullres`` holds
``dataset.json``, ``plans.json`` and ``fold_N/checkpoint_final.pth`` (or ``checkpoint_best.pth``). Everything
between the image and the logits is the ``nnunetv2`` package's own code:

* preprocessing: the configuration's preprocessor (``DefaultPreprocessor.run_case_npy``): transpose, crop to
  the non-zero bounding box, the per-channel normalisation schemes of the plans (z-score, CT, ...), resampling
  to the plans' spacing;
* prediction: ``nnUNetPredictor.predict_sliding_window_return_logits`` (Gaussian-weighted windows of the plans'
  patch size, step 0.5), the folds averaged as nnU-Net's ensemble: one network built from the plans, each
  fold's weights (kept on the CPU) loaded into it in turn, as ``nnUNetPredictor`` does. Test-time mirroring is
  **off**: every mutant is scored by the same single pass per window, and the summary says so;
* back to the image: ``resampling_fn_probabilities`` (maps) / ``resampling_fn_seg`` (masks) to the cropped
  shape, pasted into the bounding box, transposed back, as ``convert_predicted_logits_to_segmentation_with_
  correct_shape`` does for nnU-Net's own predictions. Maps and masks therefore land on the input's voxels.

The network is built from the plans (``get_network_from_plans``), not by looking the trainer class up: a
custom trainer that keeps nnU-Net's architecture loads without its code. Checkpoints are pickles: they are read
with the weights-only unpickler (tensors, numbers, numpy scalars: what ``nnUNetv2_train`` writes), and one that
needs more is refused unless ``VOXCAUSE_TRUST_PICKLES=1`` (`voxcause.models.trust.load_checkpoint`). The plans'
``network_arch_class_name`` is imported and built, as nnU-Net does: an nnU-Net folder is code; load only
folders you trust. Perturbation methods (rex, occlusion,
counterfactual) score mutants through this path. Layer and gradient methods are refused: nnU-Net runs each
window under ``torch.inference_mode`` and stitches windows, so no activation or gradient covers the image.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ErrorCode, InputError
from ..io import Volume
from .card import ModelCard, SlidingWindow
from .loaded import LoadedModel, auto_batch_size
from .trust import load_checkpoint
from .windows import Slices, reach, shifted, stitch

CHECKPOINTS = ("checkpoint_final.pth", "checkpoint_best.pth")
TILE_STEP = 0.5  # nnUNetPredictor's default tile_step_size
LAYER_METHODS_REFUSED = (
    "layer and gradient methods cannot see inside an nnU-Net model: nnU-Net predicts window by window under "
    "torch.inference_mode, so no activation or gradient covers the image — use --method rex or occlusion "
    "(or voxcause counterfactual)"
)


def is_nnunet_folder(folder: Path) -> bool:
    """True for what looks like an nnU-Net v2 results folder (or one of its fold_N folders)."""
    if not folder.is_dir():
        return False
    if (folder / "plans.json").is_file():
        return True
    if re.fullmatch(r"fold_(\d+|all)", folder.name) and any((folder / name).is_file() for name in CHECKPOINTS):
        return True
    return any(child.is_dir() and re.fullmatch(r"fold_(\d+|all)", child.name) for child in folder.iterdir())


def _read_json(path: Path, folder: Path) -> dict:
    if not path.is_file():
        raise InputError(
            f"nnU-Net folder {folder} has no {path.name} — pass the folder nnUNetv2_train wrote "
            "(nnUNet_results/DatasetXXX_Name/Trainer__Plans__configuration, with dataset.json, plans.json, fold_N/)"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read {path} ({error}) — is it the file nnU-Net wrote?") from None


def _folds(folder: Path, fold: int | str | None, checkpoint: str | None) -> list[tuple[str, Path]]:
    """[(fold name, checkpoint path)] for ``fold`` (None: every fold with a checkpoint, nnU-Net's ensemble)."""
    names = [checkpoint] if checkpoint else list(CHECKPOINTS)
    available = sorted(
        (child for child in folder.iterdir() if child.is_dir() and re.fullmatch(r"fold_(\d+|all)", child.name)),
        key=lambda child: (child.name == "fold_all", int(child.name[5:]) if child.name[5:].isdigit() else 0),
    )

    def checkpoint_of(child: Path) -> Path | None:
        return next((child / name for name in names if (child / name).is_file()), None)

    with_weights = [(child.name[5:], path) for child in available if (path := checkpoint_of(child)) is not None]
    listed = ", ".join(name for name, _ in with_weights) or "none"
    if fold is not None:
        wanted = str(fold)
        for name, path in with_weights:
            if name == wanted:
                return [(name, path)]
        raise InputError(
            f"nnU-Net folder {folder} has no fold {wanted} with {' or '.join(names)} (folds with weights: {listed}) "
            "— pick one with --fold, or omit --fold for the ensemble of all folds"
        )
    numbered = [(name, path) for name, path in with_weights if name != "all"]
    chosen = numbered or with_weights
    if not chosen:
        raise InputError(
            f"nnU-Net folder {folder} has no fold_N/{' or '.join(names)} — train a fold (nnUNetv2_train) or pass the "
            "folder that holds fold_0, fold_1, ..."
        )
    return chosen


def _read_checkpoints(folds: list[tuple[str, Path]]) -> tuple[dict, str, list[dict]]:
    """(the first checkpoint, its configuration name, every fold's network weights), read with the weights-only
    unpickler."""
    checkpoints = [load_checkpoint(path, what="nnU-Net checkpoint") for _, path in folds]
    try:
        return checkpoints[0], checkpoints[0]["init_args"]["configuration"], [c["network_weights"] for c in checkpoints]
    except (KeyError, TypeError):
        raise InputError(
            f"{folds[0][1]} is not an nnU-Net v2 checkpoint (no init_args/network_weights) — pass the results "
            "folder of nnUNetv2_train"
        ) from None


class NnUNetModel(LoadedModel):
    """A trained nnU-Net v2 model (one fold or the fold ensemble) behind the `LoadedModel` interface."""

    def __init__(
        self,
        folder: Path,
        *,
        fold: int | str | None = None,
        checkpoint: str | None = None,
        device: str = "cpu",
        batch_size: int | None = None,
        precision: str = "fp32",
        compile: bool = False,
    ) -> None:
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

        self.dataset_json = _read_json(folder / "dataset.json", folder)
        self.plans_manager = PlansManager(_read_json(folder / "plans.json", folder))
        folds = _folds(folder, fold, checkpoint)
        first, self.configuration_name, weights = _read_checkpoints(folds)
        self.configuration = self.plans_manager.get_configuration(self.configuration_name)
        if self.configuration.previous_stage_name is not None:
            raise InputError(
                f"nnU-Net configuration {self.configuration_name!r} is a cascade stage that needs the segmentation "
                f"of {self.configuration.previous_stage_name!r} as input — explain a 3d_fullres, 3d_lowres or 2d model"
            )
        self.label_manager = self.plans_manager.get_label_manager(self.dataset_json)
        self.folds = [name for name, _ in folds]
        self.checkpoints = [str(path) for _, path in folds]
        self.trainer_name = str(first.get("trainer_name", "nnUNetTrainer"))
        self.allowed_mirroring_axes = first.get("inference_allowed_mirroring_axes")
        network = self._network().to(device).eval()
        for (name, path), state in zip(folds, weights, strict=True):
            self._check_fits(network, name, path, state)
        self.fold_weights = weights
        self._loaded_weights: dict | None = None
        self._geometry: dict[int, dict] = {}
        self._last_geometry: dict | None = None
        self.predictor = self._predictor(device, network)
        self._gaussian: torch.Tensor | None = None
        super().__init__(
            network, self._card(folder), network=network, device=device,
            batch_size=batch_size, precision=precision, compile=compile,
        )
        ensemble = f"the ensemble of folds {', '.join(self.folds)}" if len(self.folds) > 1 else f"fold {self.folds[0]}"
        self._warn(
            f"nnU-Net v2 model ({self.trainer_name}, {self.configuration_name}, {ensemble}): nnU-Net's preprocessing "
            f"and Gaussian sliding window (patch {list(self.configuration.patch_size)}, step {TILE_STEP}); test-time "
            "mirroring is OFF while scoring mutants (nnUNetv2_predict mirrors by default), so its scores can differ "
            "slightly from nnU-Net's own prediction"
        )

    # ---- building (the steps of nnUNetPredictor.initialize_from_trained_model_folder, weights-only) -----------
    def _input_channels(self) -> int:
        from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels

        return determine_num_input_channels(self.plans_manager, self.configuration, self.dataset_json)

    def _network(self) -> torch.nn.Module:
        """The plans' network (``get_network_from_plans``, no trainer code), built once: the folds' weights take
        turns in it (`_use_fold`), as in ``nnUNetPredictor``."""
        from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

        return get_network_from_plans(
            self.configuration.network_arch_class_name,
            self.configuration.network_arch_init_kwargs,
            self.configuration.network_arch_init_kwargs_req_import,
            self._input_channels(),
            self.label_manager.num_segmentation_heads,
            allow_init=False,
            deep_supervision=False,
        )

    def _check_fits(self, network: torch.nn.Module, name: str, path: Path, state: dict) -> None:
        """Refuse, naming the fold, weights whose names or shapes differ from the plans' network."""
        try:
            network.load_state_dict(state)
        except RuntimeError as error:
            raise InputError(
                f"fold {name} weights ({path}) do not fit the network of plans.json "
                f"({str(error).strip().splitlines()[0][:120]}) — was it trained by a trainer with its own "
                f"architecture ({self.trainer_name})?"
            ) from None

    def _use_fold(self, state: dict) -> None:
        """Put one fold's weights (kept on the CPU) into the network, unless they are already there."""
        if self._loaded_weights is not state:
            self.network.load_state_dict(state)
            self._loaded_weights = state

    def _predictor(self, device: str, network: torch.nn.Module) -> Any:
        """nnU-Net's own predictor (its sliding-window layout and Gaussian), set up without mirroring."""
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        with contextlib.redirect_stdout(io.StringIO()):  # it prints a note about CPU devices
            predictor = nnUNetPredictor(
                tile_step_size=TILE_STEP,
                use_gaussian=True,
                use_mirroring=False,  # every mutant gets the same single pass per window
                perform_everything_on_device=device.startswith("cuda"),
                device=torch.device(device),
                verbose=False,
                verbose_preprocessing=False,
                allow_tqdm=False,
            )
        predictor.manual_initialization(
            network, self.plans_manager, self.configuration, None, self.dataset_json,
            self.trainer_name, self.allowed_mirroring_axes,
        )
        return predictor

    def _card(self, folder: Path) -> ModelCard:
        """What the folder says a card would: labels, channels, activation, the plans' patch as the window."""
        names = self.dataset_json.get("channel_names", self.dataset_json.get("modality", {}))
        channels = tuple(str(names[key]) for key in sorted(names, key=lambda key: int(key)))
        return ModelCard(
            name=f"{self.plans_manager.dataset_name}/{folder.name}",
            task="segmentation",
            labels=self._label_names(),
            channels=channels or self._input_channels(),
            activation="sigmoid" if self.label_manager.has_regions else "softmax",
            sliding_window=SlidingWindow(
                roi_size=tuple(int(s) for s in self.configuration.patch_size),
                overlap=1.0 - TILE_STEP,
                sw_batch_size=1,
                mode="gaussian",
            ),
            description=f"nnU-Net v2 {self.configuration_name}, folds {', '.join(self.folds)}",
            source=folder.resolve(),
        )

    # ---- LoadedModel overrides ------------------------------------------------------------------
    def _label_names(self) -> tuple[str, ...]:
        labels = self.dataset_json["labels"]
        if self.label_manager.has_regions:
            return tuple(str(name) for name, value in labels.items() if name != "background" and name != "ignore")
        by_value = {int(value): str(name) for name, value in labels.items() if name != "ignore"}
        return tuple(by_value[value] for value in sorted(by_value))

    def _compile(self) -> None:
        self._warn("--compile is not applied to nnU-Net models (nnU-Net's predictor calls the networks); they run "
                   "uncompiled, with the same results")

    def check_volume(self, volume: Volume) -> None:
        expected = self.card.channel_count
        if expected is not None and volume.channels != expected:
            names = f" ({', '.join(self.card.channels)})" if isinstance(self.card.channels, tuple) else ""
            raise InputError(
                f"nnU-Net model expects {expected} input channel(s){names} but the image has {volume.channels} — pass "
                "one image file per channel, in the order of dataset.json's channel_names"
            )
        dims = len(self.configuration.patch_size)
        if volume.spatial_dims not in (dims, 3) or (dims == 3 and volume.spatial_dims != 3):
            raise InputError(
                f"nnU-Net configuration {self.configuration_name!r} takes {dims}D patches but the image is "
                f"{volume.spatial_dims}D — use an image of the model's dimension"
            )

    def _nnunet_array(self, volume: Volume) -> tuple[np.ndarray, list[float]]:
        """The image as nnU-Net's SimpleITK reader gives it: (C, z, y, x) and spacing (z, y, x); 2D gets z=1."""
        array = np.asarray(volume.array, np.float32)
        spacing = [float(s) for s in volume.spacing]
        if volume.spatial_dims == 2:
            array = array[:, None]
            spacing = [999.0, *spacing]  # nnU-Net's convention for 2D images
        return array, spacing

    def prepare(self, volume: Volume) -> torch.Tensor:
        """(C, *S) image -> (1, C, *S_model): nnU-Net's own preprocessing (crop, normalise, resample)."""
        self.check_volume(volume)
        array, spacing = self._nnunet_array(volume)
        preprocessor = self.configuration.preprocessor_class(verbose=False)
        properties: dict[str, Any] = {"spacing": spacing}
        data, _seg, properties = preprocessor.run_case_npy(
            array, None, properties, self.plans_manager, self.configuration, self.dataset_json
        )
        geometry = {
            "spacing": spacing,
            "bbox": properties["bbox_used_for_cropping"],
            "shape_before_cropping": tuple(int(s) for s in properties["shape_before_cropping"]),
            "shape_after_cropping": tuple(int(s) for s in properties["shape_after_cropping_and_before_resampling"]),
            "model_shape": tuple(int(s) for s in data.shape[1:]),
            "image_shape": tuple(volume.spatial_shape),
        }
        self._geometry[id(volume)] = geometry
        self._last_geometry = geometry
        tensor = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
        if self.auto_batch:
            window = (data.shape[0], *self.configuration.patch_size)
            self.batch_size = auto_batch_size(window, self.device)
        if volume.spatial_dims == 2 and tensor.shape[1] == 1:
            tensor = tensor[:, 0]
        return tensor[None].to(self.device)

    def _spacings(self, geometry: dict) -> tuple[list[float], list[float]]:
        """(model grid spacing, image spacing), both in nnU-Net's transposed axis order."""
        image = [geometry["spacing"][axis] for axis in self.plans_manager.transpose_forward]
        model = list(self.configuration.spacing)
        if len(model) < len(image):
            model = [image[0], *model]
        return model, image

    def grid_spacing(self, volume: Volume) -> tuple[float, ...]:
        """Voxel size (mm) of the grid `prepare` puts ``volume`` on, in that grid's axis order: the plans' spacing
        (nnU-Net resamples to it); a 2D configuration keeps the image's own slice spacing on a 3D volume."""
        geometry = self._geometry_of(volume)
        spacing, _ = self._spacings(geometry)
        if len(geometry["image_shape"]) == 2:
            spacing = spacing[1:]  # the 999 mm of nnU-Net's 2D convention: the grid has no such axis
        return tuple(float(s) for s in spacing)

    def _geometry_of(self, volume: Volume | None) -> dict:
        geometry = self._geometry.get(id(volume)) if volume is not None else None
        if geometry is None and volume is not None:
            self.prepare(volume)
            geometry = self._geometry[id(volume)]
        if geometry is None:
            geometry = self._last_geometry
        if geometry is None:
            raise InputError("prepare(volume) must run before masks move to the nnU-Net model's grid")
        return geometry

    def mask_to_model_space(self, mask: np.ndarray) -> torch.Tensor:
        """(*S_image) mask of the last prepared image -> (*S_model) bool tensor (nnU-Net's segmentation resampling)."""
        from acvl_utils.cropping_and_padding.bounding_boxes import bounding_box_to_slice

        geometry = self._geometry_of(None)
        values = np.asarray(mask).astype(np.uint8)
        if values.ndim == 2:
            values = values[None]
        values = values.transpose(self.plans_manager.transpose_forward)[bounding_box_to_slice(geometry["bbox"])]
        model_spacing, image_spacing = self._spacings(geometry)
        model_shape = geometry["model_shape"]
        resampled = self.configuration.resampling_fn_seg(values[None], model_shape, image_spacing, model_spacing)
        result = torch.from_numpy(np.asarray(resampled[0]) > 0)
        if len(geometry["image_shape"]) == 2:
            result = result[0]
        return result.to(self.device)

    def to_image_space(self, values: torch.Tensor | np.ndarray, volume: Volume, *, order: int = 1) -> np.ndarray:
        """(*S_model) map or mask -> (*S_image): resample (nnU-Net's functions), un-crop, transpose back."""
        from acvl_utils.cropping_and_padding.bounding_boxes import bounding_box_to_slice

        geometry = self._geometry_of(volume)
        array = torch.as_tensor(values).detach().float().cpu().numpy()
        if len(geometry["image_shape"]) == 2:
            array = array[None]
        model_spacing, image_spacing = self._spacings(geometry)
        cropped_shape = geometry["shape_after_cropping"]
        if order == 0:
            labels = np.rint(array).astype(np.int16)
            resampled = np.asarray(
                self.configuration.resampling_fn_seg(labels[None], cropped_shape, model_spacing, image_spacing)
            )[0]
        else:
            resampled = np.asarray(
                self.configuration.resampling_fn_probabilities(array[None], cropped_shape, model_spacing, image_spacing)
            )[0]
        full = np.zeros(geometry["shape_before_cropping"], dtype=np.float32)
        full[bounding_box_to_slice(geometry["bbox"])] = resampled
        full = full.transpose(self.plans_manager.transpose_backward)
        if len(geometry["image_shape"]) == 2:
            full = full[0]
        return full

    # ---- running the model ----------------------------------------------------------------------
    def forward_raw(self, inputs: torch.Tensor, *, box: Slices | None = None) -> torch.Tensor:
        """Logits for a (B, C, *S_model) batch: nnU-Net's sliding window, averaged over the folds (inside
        ``box`` only, when given: the windows overlapping it, `voxcause.models.windows`).

        The windows, their padding and the Gaussian weights are nnU-Net's own (``pad_nd_image``,
        ``nnUNetPredictor._internal_get_sliding_window_slicers``, ``compute_gaussian``); the mutants of a batch
        go through each window together (nnUNetPredictor takes one image at a time) and are accumulated in
        float32 (nnU-Net accumulates in float16). `predict_like_nnunet` runs nnU-Net's own loop for comparison.
        """
        hooked = any(
            module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
            for module in self.network.modules()
        )
        if hooked or (torch.is_grad_enabled() and inputs.requires_grad):
            raise InputError(LAYER_METHODS_REFUSED, code=ErrorCode.NEEDS_NETWORK)
        start = time.perf_counter()
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        with torch.no_grad(), torch.autocast(torch.device(self.device).type, dtype=dtype, enabled=dtype is not None):
            logits = self._windows(inputs.to(self.device), box)
        self.forward_passes += int(inputs.shape[0])
        self.forward_seconds += time.perf_counter() - start
        return logits

    def _layout(self, shape: tuple[int, ...]) -> tuple[tuple[int, ...], list[Slices]]:
        """(padding before each spatial axis, window slices in padded coordinates) for an image of ``shape``:
        nnU-Net's padding to the patch size (``pad_nd_image`` pads the difference, half below, on the patch's
        axes) and its sliding-window slicers; a 2D configuration's slice index ``d`` becomes ``d:d+1``."""
        patch = tuple(int(s) for s in self.configuration.patch_size)
        lead = len(shape) - len(patch)
        padded = tuple(shape[:lead]) + tuple(max(int(n), p) for n, p in zip(shape[lead:], patch, strict=True))
        offsets = tuple((p - int(n)) // 2 for n, p in zip(shape, padded, strict=True))
        slicers = self.predictor._internal_get_sliding_window_slicers(padded)
        windows = [tuple(slice(s, s + 1) if isinstance(s, int) else s for s in slicer[1:]) for slicer in slicers]
        return offsets, windows

    def reach(self, box: Slices, shape: tuple[int, ...]) -> Slices:
        """The model-grid voxels that can change the output inside ``box``: the windows overlapping it."""
        offsets, windows = self._layout(shape)
        return reach(windows, box, offsets, shape)

    def _windows(self, inputs: torch.Tensor, box: Slices | None = None) -> torch.Tensor:
        """nnU-Net's Gaussian-weighted windows, stitched inside ``box`` (default: the whole image) from only the
        windows that overlap it (`voxcause.models.windows.stitch`)."""
        from acvl_utils.cropping_and_padding.padding import pad_nd_image
        from nnunetv2.inference.sliding_window_prediction import compute_gaussian

        patch = tuple(int(s) for s in self.configuration.patch_size)
        data = pad_nd_image(inputs, patch, "constant", {"value": 0}, False, None)
        offsets, windows = self._layout(tuple(inputs.shape[2:]))
        if self._gaussian is None:
            self._gaussian = compute_gaussian(
                patch, sigma_scale=1.0 / 8, value_scaling_factor=10, dtype=torch.float32, device=torch.device(self.device)
            )
        flat = inputs.ndim - 2 - len(patch)  # a 2D configuration on a 3D volume: windows are one slice thick
        weight = self._gaussian.reshape((1,) * flat + patch)
        batch = int(data.shape[0])

        def run(window: torch.Tensor) -> torch.Tensor:
            window = window.flatten(1, 2) if flat else window  # (B, C, 1, h, w) -> (B, C, h, w)
            self.window_passes += batch
            logits = self.network(window)
            return logits[:, :, None] if flat else logits

        if box is None:
            box = tuple(slice(0, int(n)) for n in inputs.shape[2:])
        total = None
        for state in self.fold_weights:  # fold by fold, as nnUNetPredictor: one weight swap per fold and call
            self._use_fold(state)
            logits = stitch(data, windows, weight, shifted(box, offsets), run)
            total = logits if total is None else total + logits
        return total / len(self.fold_weights)

    def predict_like_nnunet(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits of ``nnUNetPredictor.predict_sliding_window_return_logits`` itself (no mirroring), fold-averaged."""
        results = []
        self.predictor.network = self.network  # a copy of this model (`randomized`) shares the predictor
        for sample in inputs:
            total = None
            for state in self.fold_weights:
                self._use_fold(state)
                logits = self.predictor.predict_sliding_window_return_logits(sample).float()
                total = logits if total is None else total + logits
            results.append(total / len(self.fold_weights))
        return torch.stack(results).clone()

    @property
    def info(self) -> dict:
        """What ran: for reports and the MONAI Label app."""
        return {
            "format": "nnU-Net v2",
            "trainer": self.trainer_name,
            "configuration": self.configuration_name,
            "folds": self.folds,
            "checkpoints": self.checkpoints,
            "patch_size": list(self.configuration.patch_size),
            "spacing": list(self.configuration.spacing),
            "tile_step_size": TILE_STEP,
            "gaussian": True,
            "mirroring": False,
        }


def load_nnunet(
    folder: str | os.PathLike,
    *,
    fold: int | str | None = None,
    checkpoint: str | None = None,
    device: str = "cpu",
    batch_size: int | None = None,
    precision: str = "fp32",
    compile: bool = False,
    **overrides: Any,
) -> NnUNetModel:
    """Load an nnU-Net v2 results folder (or one of its ``fold_N`` folders, which selects that fold).

    ``fold``: one fold (``0``, ``1``, ..., ``"all"``); default every fold with weights, averaged as nnU-Net's
    ensemble. ``checkpoint``: ``checkpoint_final.pth`` or ``checkpoint_best.pth`` (default: final, else best).
    ``overrides``: card fields (labels, threshold, output ...) to replace; nnU-Net's own preprocessing cannot be
    replaced (``spatial_size``/``normalize`` are refused).
    """
    path = Path(folder)
    if re.fullmatch(r"fold_(\d+|all)", path.name) and not (path / "plans.json").exists():
        if fold is not None and str(fold) != path.name[5:]:
            raise InputError(f"--fold {fold} disagrees with the folder {path.name} — pass the results folder instead")
        fold, path = path.name[5:], path.parent
    if not is_nnunet_folder(path):
        raise InputError(
            f"--fold applies to nnU-Net v2 results folders, and {path} is not one (no plans.json, no fold_N/) — "
            "drop --fold or pass the folder nnUNetv2_train wrote"
        )
    try:
        import nnunetv2  # noqa: F401
    except ImportError:
        raise InputError(
            f"{path} is an nnU-Net v2 model but the nnunetv2 package is not installed — pip install nnunetv2"
        ) from None
    refused = [key for key in ("spatial_size", "normalize") if overrides.get(key) is not None]
    if refused:
        raise InputError(
            f"--{refused[0].replace('_', '-')} does not apply to an nnU-Net model: its plans fix the spacing, "
            "cropping and normalisation — drop the flag"
        )
    model = NnUNetModel(
        path, fold=fold, checkpoint=checkpoint, device=device, batch_size=batch_size, precision=precision,
        compile=compile,
    )
    rest = {key: value for key, value in overrides.items() if value is not None}
    if rest:
        model.card = model.card.with_overrides(**rest)
    return model
