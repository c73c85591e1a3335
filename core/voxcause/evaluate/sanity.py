"""Does the map depend on the model? The model-parameter randomisation test, with the target held fixed.

An explanation that barely changes when the model's parameters are replaced by random values describes the image
(edges, bright blobs), not the model's decision (Adebayo et al. 2018). `sanity_check` explains the image once with
the model, then with copies whose top layers are randomised in a cascade (MPRT: top third, two thirds, all; the
explained class — or, for segmenters, the original region — stays the same, so only the model changes), and
compares each map with the original:

* ``rank_correlation``: Spearman's rho of the two maps (Quantus's MPRT similarity) over the voxels where either
  is non-zero: voxels zero in both (the air a causal search never enters) all tie, and would make any two maps
  of the same body correlate (sample classifier, fully random model: 0.71 over every voxel, -0.15 over the
  support);
* ``ssim``: structural similarity (scikit-image, data range of the two maps) inside the bounding box of that
  support (zero air around it would pass for shared structure);
* ``complexity``: discrete entropy of the map's 100-bin histogram; the fully randomised model's rise over the
  original's, ``(H_random - H_original) / H_original``, is Quantus's EfficientMPRT score (Hedström et al. 2024):
  an explanation of a random model should be noisier.

``efficient=True`` runs only the fully randomised model: two maps' cost in all. The verdict reads the fully
randomised step: ``pass`` when ``|rho| <= 0.3`` (the map is gone with the model), ``fail`` when ``|rho| >= 0.7``
(the map survives the model's destruction: it is not about the model), ``weak`` between.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats

from ..errors import InputError
from ..io import Volume, read_image
from ..models import LoadedModel, load_model
from ..models.randomize import layer_count, randomized

PASS_AT = 0.3
FAIL_AT = 0.7
BINS = 100
DEFAULT_STEPS = 3


def rank_correlation(original: np.ndarray, other: np.ndarray) -> float:
    """Spearman's rho over the voxels where either map is non-zero; 0 when either map is flat there (a map
    with no ranking shares none)."""
    support = (original != 0) | (other != 0)
    a, b = original[support], other[support]
    if a.size < 2:
        return 0.0
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(scipy.stats.spearmanr(a, b).statistic)


def ssim(original: np.ndarray, other: np.ndarray) -> float:
    """Structural similarity of two maps (scikit-image) in the bounding box of their joint support, over the
    data range both span."""
    from skimage.metrics import structural_similarity

    support = np.argwhere((original != 0) | (other != 0))
    if len(support):
        box = tuple(slice(low, high + 1) for low, high in zip(support.min(0), support.max(0), strict=True))
        original, other = original[box], other[box]
    if min(original.shape) < 3:
        return float(np.allclose(original, other))
    span = float(max(np.ptp(original), np.ptp(other))) or 1.0
    window = min(7, *(side if side % 2 else side - 1 for side in original.shape))
    return float(structural_similarity(original.astype(np.float64), other.astype(np.float64), data_range=span,
                                       win_size=max(3, window)))


def discrete_entropy(values: np.ndarray, bins: int = BINS) -> float:
    """Entropy of the map's ``bins``-bin histogram (Quantus's ``discrete_entropy``)."""
    histogram, _ = np.histogram(values, bins=bins)
    return float(scipy.stats.entropy(pk=histogram))


def compare(original: np.ndarray, other: np.ndarray) -> dict[str, float]:
    return {"rank_correlation": rank_correlation(original, other), "ssim": ssim(original, other),
            "complexity": discrete_entropy(other)}


def verdict(rho: float) -> tuple[str, str]:
    size = abs(rho)
    if size <= PASS_AT:
        return "pass", f"the map changes with the model (rank correlation {rho:.2f} with a random model)"
    if size >= FAIL_AT:
        return "fail", (f"the map survives randomising the model (rank correlation {rho:.2f}): it shows the image, "
                        "not the model's decision")
    return "weak", f"the map only partly depends on the model (rank correlation {rho:.2f} with a random model)"


def sanity_check(
    image: str | Path | Volume,
    *,
    model: str | Path | LoadedModel,
    method: str = "rex",
    target: int | str | None = None,
    region: Any = None,
    seed: int = 0,
    steps: int = DEFAULT_STEPS,
    efficient: bool = False,
    device: str = "auto",
    model_options: dict | None = None,
    progress: Callable[[str, float], None] | None = None,
    **options: Any,
):
    """Explain ``image`` with the model and with randomised copies; returns (the original `Explanation`, report).

    ``model_options`` are `load_model` overrides (for a path). The report (also put in the explanation's ``details["sanity"]``, so summary.json carries it) holds the
    method, the fixed target, one entry per randomisation step (``randomized``: share of layers, ``layers``,
    the three numbers of `compare`, the random model's map's certificate verdict), ``complexity_original``, ``complexity_rise``, the verdict and its reason,
    the maps computed, forward passes and seconds.

    Raises:
        InputError: ``steps`` < 1, or a model whose parameters cannot be reached.
    """
    from ..api import explain

    if steps < 1:
        raise InputError(f"--steps {steps} must be at least 1 — e.g. --steps 3")
    started = time.perf_counter()
    volume = image if isinstance(image, Volume) else read_image(image)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, device=device, **(model_options or {}))
    total = layer_count(loaded)
    if total == 0:
        raise InputError("this model exposes no layers to randomise — use its TorchScript/ONNX file, a card or bundle")
    fractions = [1.0] if efficient else [(k + 1) / steps for k in range(steps)]
    report_progress = progress or (lambda _stage, _fraction: None)
    report_progress("explaining with the model", 0.0)
    original = explain(volume, model=loaded, method=method, target=target, region=region, seed=seed,
                       progress=False, **options)
    fixed_region = original.masks.get("target_region") if original.target.get("kind") == "region" else None
    fixed_target = int(original.target["index"])
    passes = int(original.stats.get("forward_passes", 0))
    rows = []
    with tempfile.TemporaryDirectory(prefix="voxcause-sanity-") as workdir:
        for step, fraction in enumerate(fractions):
            report_progress(f"explaining a model with {fraction:.0%} of its layers randomised",
                            (step + 1) / (len(fractions) + 1))
            copy = randomized(loaded, fraction, seed=seed, workdir=Path(workdir))
            other = explain(volume, model=copy, method=method, target=fixed_target, region=fixed_region, seed=seed,
                            progress=False, **options)
            passes += int(other.stats.get("forward_passes", 0))
            layers = min(total, max(1, int(np.ceil(fraction * total))))
            rows.append({"randomized": round(fraction, 3), "layers": layers, **compare(original.map, other.map),
                         "certificate": (other.certificate or {}).get("verdict")})
    base = discrete_entropy(original.map)
    full = rows[-1]
    outcome, reason = verdict(full["rank_correlation"])
    report = {
        "method": original.method,
        "target": {"index": fixed_target, "label": original.target["label"], "kind": original.target.get("kind")},
        "layers": total,
        "steps": rows,
        "complexity_original": base,
        "complexity_rise": (full["complexity"] - base) / base if base else None,
        "verdict": outcome,
        "reason": reason,
        "maps": len(rows) + 1,
        "forward_passes": passes,
        "seconds": time.perf_counter() - started,
    }
    original.details["sanity"] = report
    report_progress("done", 1.0)
    return original, report
