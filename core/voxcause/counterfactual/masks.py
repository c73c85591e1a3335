"""Where the counterfactual's region comes from: a mask file, a segmenter's prediction, or an explanation.

All three return a bool array on the image's own voxels (*spatial), so removal and region-only work the
same whatever the source. A mask file may be on any grid that overlaps the image physically (another
resolution, a crop, another orientation): it is resampled with nearest neighbour into the image grid.
Taking the mask from an explanation turns "is the sufficient explanation also necessary?" into one call.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..io import Volume
from ..io.resample import resample_mask


def mask_from_file(path: str | os.PathLike, volume: Volume, *, labels: Sequence[int] | None = None) -> np.ndarray:
    """Read a mask (NIfTI, NRRD, a Slicer ``.seg.nrrd`` ...) onto ``volume``'s grid.

    Args:
        path: the mask file; any grid overlapping the image in physical space.
        volume: the image the mask belongs to.
        labels: label values that make up the region (e.g. ``[1, 4]`` for a BraTS tumour core);
            default every non-zero voxel.

    Raises:
        InputError: missing/unreadable file, no physical overlap, nothing of the mask inside the image,
            no voxel with the requested labels.
    """
    source = Path(path)
    if not source.exists():
        raise InputError(f"mask not found: {source} — check the --mask path")
    try:
        image = sitk.ReadImage(str(source))
    except RuntimeError:
        raise InputError(f"cannot read mask {source} — use NIfTI, NRRD or MHA (a label map or a binary mask)") from None
    if image.GetNumberOfComponentsPerPixel() > 1:
        image = sitk.VectorIndexSelectionCast(image, 0)
    values = sitk.GetArrayFromImage(image)
    if labels is not None:
        wanted = np.isin(values, np.asarray(list(labels)))
        if not wanted.any():
            present = sorted(int(v) for v in np.unique(values) if v != 0)[:10]
            raise InputError(f"mask {source.name} has no voxel with label(s) {list(labels)} (it has {present}) — "
                             "pick labels that exist with --mask-labels")
        selected = sitk.GetImageFromArray(wanted.astype(np.uint8))
        selected.CopyInformation(image)
        image = selected
    elif not (values != 0).any():
        raise InputError(f"mask {source.name} is empty (no non-zero voxel) — pass the mask of the region")
    mask = resample_mask(image, volume)
    if not mask.any():
        raise InputError(f"mask {source.name} lies outside the image (no mask voxel falls on it after resampling) — "
                         "pass the mask drawn on this image, or check its origin/direction")
    return mask


def mask_from_array(array: Any, volume: Volume) -> np.ndarray:
    """A mask given as an array on the image grid (checked, never modified)."""
    mask = np.asarray(array)
    if mask.shape != volume.spatial_shape:
        raise InputError(f"mask shape {mask.shape} differs from the image {volume.spatial_shape} — "
                         "pass a mask on the image's grid or a mask file (resampled automatically)")
    return mask != 0


def mask_from_segmenter(segmenter, volume: Volume, *, label: int | str | None = None) -> np.ndarray:
    """The region a segmenter predicts for ``label`` (default: its largest foreground class) on ``volume``.

    Args:
        segmenter: a `voxcause.LoadedModel` whose task is segmentation (or a path to one).
        volume: the image.
        label: class name or index; default the largest predicted foreground class.
    """
    from ..models import LoadedModel, load_model
    from ..targets import resolve_target

    model = segmenter if isinstance(segmenter, LoadedModel) else load_model(segmenter)
    inputs = model.prepare(volume)
    probs = model.predict(inputs)
    if model.infer_task(probs) != "segmentation":
        raise InputError("--mask-from-segmenter needs a segmentation model (its output is a class map) — "
                         "pass a segmenter, or give the mask as a file with --mask")
    target = resolve_target(model, inputs, label)
    mask = model.to_image_space(target.region.float(), volume, order=0) > 0.5
    if not mask.any():
        raise InputError(f"the segmenter's '{target.label}' region vanishes on the image grid — pass --mask instead")
    return mask


def mask_from_explanation(volume: Volume, *, model, target: int | str | None = None, method: str = "rex",
                          mask_name: str = "sufficient", seed: int = 0, **options: Any) -> np.ndarray:
    """The ``sufficient`` mask of an explanation of ``model`` on ``volume`` (computed with `voxcause.explain`).

    Removing it answers "is the sufficient explanation also necessary?".
    """
    from ..api import explain

    explanation = explain(volume, model=model, target=target, method=method, seed=seed, progress=False, **options)
    mask = explanation.masks.get(mask_name)
    if mask is None or not mask.any():
        raise InputError(f"the {method} explanation produced no '{mask_name}' mask — use --explain-method rex, "
                         "or pass a mask file with --mask")
    return np.asarray(mask, dtype=bool)
