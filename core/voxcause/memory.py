"""Peak memory of an explanation, estimated before it runs, and refused when it cannot fit.

A 2 MB gzipped 600³ image explained by a 24³ model once took 7.5 GB and died (or swapped) half way. The cost
has three parts, measured on this code (CPU, float32, `voxcause explain` peak RSS):

* the process itself (Python, torch, SimpleITK, the explainers): 0.5-0.6 GB, counted as 0.6;
* the image grid: the float32 channels as read, the map, the masks, their resampling and the writers'
  copies: 36 bytes per voxel plus 8 per channel (42.6 B/voxel measured between 128³ and 256³, one channel);
* the model grid: the engine's maps and partitions, about 50 bytes per voxel, and each forward batch of
  mutants with its activations (``batch x channels x 4 bytes x ACTIVATION_FACTOR`` per voxel), on the CPU
  unless the model runs on a GPU.

A run whose estimate exceeds ``--max-memory`` (the whole peak), or whose still-to-come part exceeds the memory
available (Linux ``MemAvailable``), is refused with the estimate and what lowers it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InputError

PROCESS_BYTES = 600 * 2**20
IMAGE_BYTES_PER_VOXEL = 36
CHANNEL_BYTES_PER_VOXEL = 8
GRID_BYTES_PER_VOXEL = 50
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes an explanation needs at its peak, by part."""

    process: int
    image: int
    grid: int
    batch: int

    @property
    def total(self) -> int:
        return self.process + self.image + self.grid + self.batch


def parse_size(text: str | int | float) -> int:
    """``"8G"``, ``"512M"``, ``"1.5GB"`` or a number of bytes -> bytes (binary units)."""
    if isinstance(text, int | float):
        return int(text)
    found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)i?b?\s*", str(text).lower())
    if not found:
        raise InputError(f"--max-memory {text!r} is not a size — e.g. 8G, 512M or 1.5GB")
    return int(float(found.group(1)) * _UNITS[found.group(2)])


def estimate(image_shape: Sequence[int], channels: int, model_grid: Sequence[int], batch: int, *,
             batch_on_cpu: bool = True) -> MemoryEstimate:
    """The peak-memory estimate of explaining an image of ``image_shape`` on a model taking ``model_grid``."""
    from .models.loaded import ACTIVATION_FACTOR

    image_voxels = math.prod(int(n) for n in image_shape)
    grid_voxels = math.prod(int(n) for n in model_grid)
    return MemoryEstimate(
        process=PROCESS_BYTES,
        image=image_voxels * (IMAGE_BYTES_PER_VOXEL + CHANNEL_BYTES_PER_VOXEL * channels),
        grid=grid_voxels * GRID_BYTES_PER_VOXEL,
        batch=batch * channels * grid_voxels * 4 * ACTIVATION_FACTOR if batch_on_cpu else 0,
    )


def _gb(value: int) -> str:
    return f"{value / 2**30:.1f} GB"


def check_memory(volume, model, limit: int | str | None = None) -> MemoryEstimate:
    """Estimate the run's peak memory; refuse it (InputError) above ``limit`` (default: the memory available).

    ``volume`` is the `Volume` read, ``model`` the `LoadedModel` (its grid is the card's ``spatial_size``, or
    the image's own grid for a bare or windowed model; a window's batch covers ``roi_size`` windows).
    """
    from .models.loaded import auto_batch_size, available_memory

    grid = tuple(model.card.spatial_size or volume.spatial_shape)
    window = getattr(model, "sliding_window", None)
    batch_grid = tuple(window.roi_size) if window is not None else grid
    if getattr(model, "auto_batch", False):
        batch = auto_batch_size((volume.channels, *batch_grid), model.device)
    else:
        batch = int(model.batch_size)
    if window is not None:
        batch *= max(1, int(window.sw_batch_size))
    found = estimate(volume.spatial_shape, volume.channels, grid, batch,
                     batch_on_cpu=not str(model.device).startswith("cuda"))
    if window is not None:  # the batch's activations cover windows, not the whole grid
        window_voxels = math.prod(batch_grid)
        found = MemoryEstimate(found.process, found.image, found.grid,
                               found.batch * window_voxels // max(1, math.prod(grid)))
    # --max-memory caps the whole peak; against MemAvailable only what is still to come counts (this process
    # and the image it read are already resident).
    if limit is not None:
        allowed, needed, where = parse_size(limit), found.total, "--max-memory"
    else:
        allowed, where = available_memory(), "available"
        needed = found.total - found.process - int(volume.array.nbytes)
    if allowed is None or needed <= allowed:
        return found
    shape = "x".join(str(n) for n in volume.spatial_shape)
    raise InputError(
        f"explaining this {shape} image needs about {_gb(needed)}{' more' if limit is None else ''} memory (image grid {_gb(found.image)}, "
        f"model grid {'x'.join(map(str, grid))} {_gb(found.grid)}, batches of {batch} {_gb(found.batch)}) but "
        f"{_gb(allowed)} is {where} — crop the image to the region of interest, explain on a smaller grid "
        "(--spatial-size), lower --batch-size, or raise --max-memory if you know it fits"
    )
