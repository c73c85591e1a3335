"""Results: the raw `Attribution` an explainer returns in the model's grid, and the user-facing
`Explanation` in the image's grid, which also knows how to save itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import InputError
from .io import Volume
from .jsonio import jsonable
from .sizes import mask_size


@dataclass
class Attribution:
    """What an explainer computes, in the model's grid.

    Attributes:
        map: (*S_model) float32, higher = more responsible. Never flipped or rescaled.
        masks: named (*S_model) bool masks (e.g. ``sufficient``, ``contrastive``, ``multiple_2``).
        stats: numbers worth reporting (forward passes, seconds per stage, ...).
        details: per-method results (e.g. ``sufficient``: {voxels, fraction, score}).
        certificate: `voxcause.certificate.Certificate.to_dict()` where the method tested its own explanation
            (the causal engine does, to choose its occlusion); None: ``voxcause.explain`` certifies it.
        canvas: (C, *S_model) the canvas the method already measured its map on (a CAM choosing its layer,
            `voxcause.saliency._faithful`); ``voxcause.explain`` certifies on it instead of computing it again.
    """

    map: torch.Tensor
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    certificate: dict[str, Any] | None = None
    canvas: torch.Tensor | None = None


@dataclass
class Explanation:
    """An explanation on the input image's voxels, as `voxcause.explain` returns it.

    Attributes:
        map: (*S_image) float32 attribution, higher = more responsible.
        masks: named (*S_image) bool masks.
        target: ``{"index", "label", "kind", ...}``.
        score: target score on the unperturbed input.
        method: explainer name; params: its settings (seed included); stats: cost and counts.
        volume: the input `Volume` (geometry reference for saving).
    """

    map: np.ndarray
    masks: dict[str, np.ndarray]
    target: dict[str, Any]
    score: float
    method: str
    params: dict[str, Any]
    stats: dict[str, Any]
    details: dict[str, Any]
    volume: Volume
    model: dict[str, Any] = field(default_factory=dict)
    prediction: dict[str, Any] = field(default_factory=dict)
    predicted_labels: np.ndarray | None = None  # segmenters: the model's label map on the image grid
    certificate: dict[str, Any] | None = None  # `voxcause.certificate.Certificate.to_dict()`: can it be trusted?
    # Per-voxel results beyond the map and masks (e.g. dea's fused parts, occlusion's region labels), on the
    # image grid: written beside summary.json as ``<name>.nii.gz`` and named in its ``volumes``.
    extra_volumes: dict[str, np.ndarray] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The ``summary.json`` content, valid against ``summary.schema.json`` (`SUMMARY_SCHEMA_VERSION`).

        No per-voxel data: volumes are files beside it (``volumes`` names them); a stray array in ``stats`` or
        ``details`` is left out with a warning rather than written.
        """
        from ._version import __version__

        warnings = list(self.stats.get("warnings", []))
        stats = _small({key: value for key, value in self.stats.items() if key != "warnings"}, "stats", warnings)
        details = _small({k: v for k, v in self.details.items() if k not in RESERVED}, "details", warnings)
        return jsonable(
            {
                "schema": "voxcause-summary",
                "schema_version": SUMMARY_SCHEMA_VERSION,
                "method": self.method,
                "target": self.target,
                "score": self.score,
                "prediction": self.prediction,
                "forward_passes": self.stats.get("forward_passes", 0),
                "backward_passes": self.stats.get("backward_passes", 0),
                "seconds": self.stats.get("seconds", 0.0),
                "device": self.stats.get("device", "cpu"),
                "version": __version__,
                "input": self.volume.paths,
                "images": self.volume.paths,
                **({"input_series": self.volume.series_uid} if getattr(self.volume, "series_uid", None) else {}),
                "model": self.model,
                "params": _small(self.params, "params", warnings),
                "warnings": warnings,
                "certificate": self.certificate,
                "volumes": self.volume_files(),
                "mask_sizes": {name: mask_size(mask, self.volume.spacing) for name, mask in self.masks.items()},
                "stats": stats,
                **details,
            }
        )

    def volume_files(self) -> dict[str, str]:
        """``{name: file name}`` of the per-voxel results written beside summary.json."""
        files = {"map": "map.nii.gz"}
        if self.masks:
            files["explanation"] = "explanation.seg.nrrd"
        if self.predicted_labels is not None:
            files["prediction"] = "prediction.seg.nrrd"
        files.update({name: f"{name}.nii.gz" for name in self.extra_volumes})
        return files

    def save(self, out_dir: str | Path, *, dicom: bool | None = None) -> Path:
        """Write map.nii.gz, explanation.seg.nrrd, summary.json and overview.png into ``out_dir`` atomically;
        also explanation.seg.dcm and map.pm.dcm when the input is a DICOM series (``dicom=None``), on request
        (``dicom=True``; refused without a DICOM input) or never (``dicom=False``)."""
        from .outputs import save_explanation

        return save_explanation(self, out_dir, dicom=dicom)


@dataclass
class Explanations:
    """What ``voxcause.explain(..., target="all")`` returns: one `Explanation` per target of a segmentation,
    found by one shared search (`voxcause.causal.multi`), in target order.

    Index it by position or by target name (``"tumour"``, or ``"positive 2"`` for a one-label model's second
    component); ``stats`` is the whole run's cost (``forward_passes``, ``seconds``, ``shared_search``).
    ``save(out_dir)`` writes one explanation folder per target and a ``summary.json`` listing them.
    """

    items: list[Explanation]
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, key: int | str) -> Explanation:
        if isinstance(key, int):
            return self.items[key]
        for item in self.items:
            if target_name(item.target) == key:
                return item
        raise KeyError(f"no target named {key!r}: {', '.join(target_name(item.target) for item in self.items)}")

    def folders(self) -> list[str]:
        """Each target's folder name under the output folder: its name, lower case, runs of other characters
        than letters and digits as one '-' (numbered where two would collide)."""
        names: list[str] = []
        for item in self.items:
            slug = "-".join("".join(c if c.isalnum() else " " for c in target_name(item.target).lower()).split())
            slug = slug or f"label-{item.target['index']}"
            names.append(slug if slug not in names else f"{slug}-{len(names) + 1}")
        return names

    def summary(self) -> dict[str, Any]:
        """The top ``summary.json``: the run's cost and, per target, its folder, score, cost and certificate."""
        from ._version import __version__

        targets = []
        for folder, item in zip(self.folders(), self.items, strict=True):
            certificate = item.certificate or {}
            targets.append({
                **item.target, "name": target_name(item.target), "folder": folder, "score": item.score,
                "target_passes": item.stats.get("target_passes", item.stats.get("forward_passes", 0)),
                "searched_alone": "searched_alone" in item.details,
                "certificate": {"verdict": certificate.get("verdict"), "reason": certificate.get("reason")},
            })
        first = self.items[0]
        return jsonable({
            "schema": TARGETS_SCHEMA, "schema_version": SUMMARY_SCHEMA_VERSION, "method": first.method,
            "version": __version__, "input": first.volume.paths, "model": first.model, "params": first.params,
            "forward_passes": self.stats.get("forward_passes", 0), "seconds": self.stats.get("seconds", 0.0),
            "shared_search": self.stats.get("shared_search", {}), "targets": targets,
        })

    def save(self, out_dir: str | Path, *, dicom: bool | None = None) -> Path:
        """Write each target's explanation folder (`Explanation.save`) under ``out_dir`` and the summary beside
        them, all in one atomic move."""
        from .outputs import save_explanations

        return save_explanations(self, out_dir, dicom=dicom)


def target_name(target: dict[str, Any]) -> str:
    """A target's name from its description: the label, and its component number where it has one."""
    return target["label"] if target.get("component") is None else f"{target['label']} {target['component']}"


def check_one_explanation(folder: str | Path) -> None:
    """Refuse a ``--target all`` folder where one explanation folder is needed (findings, report), naming the
    explanation folders inside it."""
    path = Path(folder) / "summary.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return  # the reader of the summary says what is wrong with it
    if isinstance(data, dict) and data.get("schema") == TARGETS_SCHEMA:
        folders = ", ".join(str(Path(folder) / entry["folder"]) for entry in data.get("targets", []))
        raise InputError(f"{folder} holds one explanation per target (--target all) — pass one of its folders: "
                         f"{folders}")


TARGETS_SCHEMA = "voxcause-targets"
SUMMARY_SCHEMA_VERSION = "1.0.0"


# Top-level summary keys a method's details may not overwrite.
RESERVED = frozenset(
    {"schema", "schema_version", "method", "target", "score", "prediction", "forward_passes", "backward_passes",
     "seconds", "device", "version", "input", "images", "model", "params", "warnings", "certificate", "volumes",
     "stats", "mask_sizes"}
)
# The most numbers one summary entry may hold; anything larger is per-voxel data and belongs in a file.
MAX_VALUES = 64


def _size(value: Any) -> int:
    if isinstance(value, torch.Tensor | np.ndarray):
        return int(np.prod(value.shape))
    if isinstance(value, dict):
        return sum(_size(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_size(v) for v in value)
    return 1


def _small(values: dict[str, Any], where: str, warnings: list[str]) -> dict[str, Any]:
    """``values`` without entries holding per-voxel data (arrays of more than `MAX_VALUES` numbers)."""
    kept = {}
    for key, value in values.items():
        if isinstance(value, torch.Tensor | np.ndarray) and _size(value) > MAX_VALUES:
            warnings.append(f"summary: {where}.{key} ({_size(value)} values) left out: per-voxel data goes to files")
        else:
            kept[key] = value
    return kept


def summary_schema() -> dict:
    """The JSON schema ``summary.json`` follows (``voxcause/summary.schema.json``, version `SUMMARY_SCHEMA_VERSION`)."""
    from importlib import resources

    return json.loads(resources.files("voxcause").joinpath("summary.schema.json").read_text(encoding="utf-8"))


def validate_summary(data: dict) -> None:
    """Raise ``jsonschema.ValidationError`` when ``data`` is not a valid ``summary.json``."""
    import jsonschema

    jsonschema.validate(data, summary_schema(), cls=jsonschema.Draft202012Validator)


def read_summary(path: str | Path) -> dict[str, Any]:
    """A ``summary.json`` as a dict, checked against the schema when it says it is one (``"schema":
    "voxcause-summary"``; a counterfactual's summary has its own keys and is read as it is).

    Raises `InputError` for a file that is not JSON, or a summary that breaks the schema, naming where.
    """
    import jsonschema

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"{path} is not valid JSON ({error.msg}) — re-run `voxcause explain`") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a JSON object — re-run `voxcause explain`")
    if data.get("schema") == "voxcause-summary":
        problems = sorted(jsonschema.Draft202012Validator(summary_schema()).iter_errors(data),
                          key=lambda e: list(e.absolute_path))
        if problems:
            where = "/".join(str(part) for part in problems[0].absolute_path) or "(top level)"
            raise InputError(f"{path} does not match the summary schema {SUMMARY_SCHEMA_VERSION} at {where}: "
                             f"{problems[0].message} — re-run `voxcause explain` to write it again")
    return data


def split_volumes(
    details: dict[str, Any], grid: tuple[int, ...], to_image: Callable[[torch.Tensor, int], np.ndarray]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Move the per-voxel entries of an `Attribution`'s details (tensors on the model ``grid``) to volumes.

    Args:
        details: ``Attribution.details``.
        grid: the model grid (*S_model).
        to_image: maps a (*S_model) float tensor to the image grid, ``order`` 0 (labels) or 1 (values).

    Returns:
        (details without them, ``{name: (*S_image) array}``: float32, or integer labels for integer tensors).
    """
    kept, volumes = {}, {}
    for key, value in details.items():
        if isinstance(value, torch.Tensor) and tuple(value.shape) == tuple(grid):
            labels = not value.is_floating_point()
            array = to_image(value.detach().float().cpu(), 0 if labels else 1)
            volumes[key] = np.rint(array).astype(np.int32) if labels else np.asarray(array, np.float32)
        else:
            kept[key] = value
    return kept, volumes
