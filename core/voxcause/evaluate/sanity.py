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

A causal map answers "what in this image is responsible for this decision"; a random model usually does not make
the original decision in a way the image decides. Either it predicts another class (a causal method has nothing
to explain: `ErrorCode.NOT_DECIDED`) or it keeps the decision with the whole image occluded (the random sample
segmenter, every seed tried: its region score barely depends on the input). Its map is then empty — the causal
answer "no part of this image is responsible" — and is compared as the all-zero map it is (rho 0), the step
saying so (``empty``, ``empty_because``): the check stops on neither. (Before the engine recognised an
undecidable decision it retried canvases and credited something, and that map's rho with the sample segmenter's
was 0.42.) When a random segmenter *does* decide the fixed region from the image, it decides it from the region
itself: every convolutional network computes a voxel from its neighbourhood. If both maps then rest on the region
(``region_share``: at least `LOCAL_SHARE` of their positive mass inside it) and their rho is above the pass line,
the verdict is ``inconclusive``, not ``fail``: the similarity is the fixed target's locality, which randomising the
model cannot remove (the caveat of Binder et al. 2023 on top-down randomisation checks).

``efficient=True`` runs only the fully randomised model: two maps in all. The verdict reads the fully randomised
step: ``pass`` when ``|rho| <= 0.3`` (the map is gone with the model) or its map is empty, ``fail`` when
``|rho| >= 0.7`` (the map survives the model's destruction: it is not about the model), ``weak`` between,
``inconclusive`` as above.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats

from ..errors import ErrorCode, InputError
from ..io import Volume, read_image
from ..models import LoadedModel, load_model
from ..models.randomize import layer_count, randomized

PASS_AT = 0.3
FAIL_AT = 0.7
#: A map with at least this share of its positive mass inside a segmenter's target region rests on the region.
LOCAL_SHARE = 0.5
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


def region_share(values: np.ndarray, region: np.ndarray) -> float | None:
    """Share of the map's positive mass inside ``region`` (None for a map with none)."""
    positive = np.clip(values, 0, None)
    total = float(positive.sum())
    return float(positive[region].sum()) / total if total > 0 else None


def judge(full: dict, original_share: float | None) -> tuple[str, str]:
    """The verdict from the fully random step (``full``, a row of the report); ``original_share``: the model's
    map's `region_share` for a segmenter's region, None for a class."""
    if full["empty"]:
        return "pass", (f"the fully random model's map is empty ({full['empty_because']}): nothing of the map "
                        "survives without the model's decision")
    outcome, reason = verdict(full["rank_correlation"])
    shares = (original_share, full.get("region_share"))
    if outcome != "pass" and all(share is not None and share >= LOCAL_SHARE for share in shares):
        return "inconclusive", (
            f"both maps rest on the target region itself ({shares[0]:.0%} and {shares[1]:.0%} of their mass; rank "
            f"correlation {full['rank_correlation']:.2f}): any network that computes a voxel from its neighbourhood, "
            "a random one too, decides a fixed region from it, so randomisation cannot tell this model's use of "
            "the region from that locality"
        )
    return outcome, reason


def random_model_map(explain_copy: Callable[[], Any], like: np.ndarray) -> tuple[np.ndarray, str | None, str | None]:
    """The randomised model's map (``explain_copy()``: an `Explanation` or a bare map), its certificate verdict, and
    why it is empty (None when it is not).

    A random model usually does not make the original decision in a way the image decides: it predicts another
    class (a causal method then has nothing to explain: `ErrorCode.NOT_DECIDED`, an all-zero map), or it keeps the
    decision with the whole image occluded (the map is empty and its certificate says why). Both are the causal
    answer "no part of this image is responsible", so they are compared as the all-zero map they are."""
    try:
        other = explain_copy()
    except InputError as error:
        if error.code is not ErrorCode.NOT_DECIDED:
            raise
        return np.zeros_like(like), "fail", "the random model does not make the decision on this image"
    values = other if isinstance(other, np.ndarray) else other.map
    certificate = {} if isinstance(other, np.ndarray) else other.certificate or {}
    if np.any(values > 0):
        return values, certificate.get("verdict"), None
    return values, certificate.get("verdict"), certificate.get("reason") or "no positive value"


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
    the three numbers of `compare`, the random model's map's certificate verdict, ``empty`` and why,
    a segmenter's ``region_share``), ``complexity_original``, ``region_share_original``, ``complexity_rise``, the
    verdict and its reason,
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
    fixed_mask = None if fixed_region is None else np.asarray(fixed_region, dtype=bool)
    fixed_target = int(original.target["index"])
    passes = int(original.stats.get("forward_passes", 0))
    rows = []
    with tempfile.TemporaryDirectory(prefix="voxcause-sanity-") as workdir:
        for step, fraction in enumerate(fractions):
            report_progress(f"explaining a model with {fraction:.0%} of its layers randomised",
                            (step + 1) / (len(fractions) + 1))
            copy = randomized(loaded, fraction, seed=seed, workdir=Path(workdir))
            other_map, certificate, empty_because = random_model_map(
                lambda copy=copy: explain(volume, model=copy, method=method, target=fixed_target, region=fixed_region,
                                          seed=seed, progress=False, **options), original.map)
            passes += copy.forward_passes
            layers = min(total, max(1, int(np.ceil(fraction * total))))
            rows.append({"randomized": round(fraction, 3), "layers": layers, **compare(original.map, other_map),
                         "certificate": certificate, "empty": empty_because is not None,
                         **({"empty_because": empty_because} if empty_because else {}),
                         **({"region_share": region_share(other_map, fixed_mask)} if fixed_mask is not None else {})})
    base = discrete_entropy(original.map)
    full = rows[-1]
    original_share = region_share(original.map, fixed_mask) if fixed_mask is not None else None
    outcome, reason = judge(full, original_share)
    report = {
        "method": original.method,
        "target": {"index": fixed_target, "label": original.target["label"], "kind": original.target.get("kind")},
        "layers": total,
        "steps": rows,
        "complexity_original": base,
        **({"region_share_original": original_share} if fixed_mask is not None else {}),
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
