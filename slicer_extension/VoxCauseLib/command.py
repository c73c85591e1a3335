"""Turn the panel's choices into one `voxcause` command line.

Why a separate step: the command is the whole contract between Slicer and the core, so it is built (and
checked) here in plain Python where a test can read it, and the widget never assembles arguments itself.
Bad choices raise `RequestError` (a `ValueError`) whose one-line message names the problem and the fix; the
panel shows that line instead of starting a process that would fail later.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .display import DEFAULT_OPACITY, DEFAULT_THRESHOLD
from .options import DEFAULT_METHOD, Device, Method, Occlusion

#: Runs the core's console entry point from any Python that has `voxcause` installed (PythonSlicer included),
#: without relying on the `voxcause` script being on PATH. `main()` reads `sys.argv[1:]`.
LAUNCHER = "import sys; from voxcause.cli.main import main; sys.exit(main())"

#: The iterations box's upper end: the core's declared maximum (tests/slicer/test_lib_defaults.py checks it).
MAX_ITERATIONS = 500


#: One-line messages for choices that cannot run.
NO_VOLUME = "No input volume selected: choose the image in 'Input volume' and press Apply again."
EMPTY_CHANNEL = "An input channel is empty: choose a volume for every channel the model needs."
NO_MODEL = "No model selected: pick a sample model or choose a model file / MONAI bundle folder."
NO_REGION = "A counterfactual needs a region: choose a segmentation and a segment under 'Region'."


def model_not_found(model: str) -> str:
    """Message for a model path that does not exist."""
    return f"Model not found: {model}. Choose an existing model file or bundle folder."


class RequestError(ValueError):
    """A choice in the panel that cannot run; the message says what to change."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExplainRequest:
    """Everything one run needs: the one value that goes from the panel through `VoxCauseLogic.run` and
    `job.ExplainJob` to the command line (as MONAIAuto3DSeg's Logic fills one task description).

    The panel fills it with scene nodes; `job.ExplainJob` exports the inputs and makes the file-level copy
    with `exported` (same choices, files instead of nodes), which `build_command` turns into arguments. The
    checks live in `validate`, once, for both.

    Args:
        images: one input per model channel, in the model card's channel order (e.g. T1, T1c, T2, FLAIR):
            volume nodes in the panel, files once exported. A None entry is a channel left empty.
        model: a model card (.json/.yaml), TorchScript/ONNX/.pt2 file, or a MONAI bundle folder.
        method: what explains the decision; `Method.COUNTERFACTUAL` runs `voxcause counterfactual`.
        target: class label or index to explain; None = the predicted class.
        region: (segmentation node, segment id) in the panel, a mask file once exported; required for
            counterfactuals, optional otherwise (`--region`: explain a segmenter's class inside that region).
        model_segmentation: a segmentation node shown beside the explanation (display only; default the region's).
        device: CPU or CUDA. CPU also hides the GPUs from the process (see `process.child_environment`).
        seed: random seed (recorded in summary.json; same seed, same map).
        iterations: causal-search iterations; None = the core's default (no flag is sent). Sent only to a method
            that declares it (`Method.sends`).
        occlusion: what replaces occluded voxels, or a path to a baseline image; None or `Occlusion.DEFAULT` =
            the core's default (no flag is sent; `voxcause methods --json` says which it is). Sent only to a
            method that declares it.
        threshold, opacity: initial display of the map (see `display.map_display`).
        out_dir: folder the run writes (map.nii.gz, explanation.seg.nrrd, summary.json, overview.png); None in
            the panel = a new temporary folder, kept after success and removed after a failure or cancel.
        write_scene_file: also write `voxcause-scene.mrb` into the run folder after success.
        report: after a successful explanation run `voxcause report DIR` too (report.md in the results text).
    """

    images: tuple[Any, ...]
    model: str
    method: Method = DEFAULT_METHOD
    target: str | None = None
    region: Any = None
    model_segmentation: Any = None
    device: Device = Device.CPU
    seed: int = 0
    iterations: int | None = None
    occlusion: Occlusion | Path | None = None
    threshold: float = DEFAULT_THRESHOLD
    opacity: float = DEFAULT_OPACITY
    out_dir: Path | None = None
    write_scene_file: bool = False
    report: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", tuple(self.images))
        if self.occlusion is Occlusion.DEFAULT:  # one spelling of "the core's default"
            object.__setattr__(self, "occlusion", None)
        if self.out_dir is not None:
            object.__setattr__(self, "out_dir", Path(self.out_dir))

    def validate(self) -> None:
        """Raise `RequestError` for a request that cannot run; the message names the fix."""
        if not any(image is not None for image in self.images):
            raise RequestError(NO_VOLUME)
        if any(image is None for image in self.images):
            raise RequestError(EMPTY_CHANNEL)
        if not self.model:
            raise RequestError(NO_MODEL)
        if not Path(self.model).exists():
            raise RequestError(model_not_found(str(self.model)))
        if self.method.is_counterfactual and self.region is None:
            raise RequestError(NO_REGION)
        if self.iterations is not None and self.method.sends("iterations") and not 1 <= self.iterations <= MAX_ITERATIONS:
            raise RequestError(f"Iterations must be between 1 and {MAX_ITERATIONS}; got {self.iterations}.")
        if self.seed < 0:
            raise RequestError(f"Seed must be 0 or more; got {self.seed}.")
        if self.target is not None and not str(self.target).strip():
            raise RequestError("Target is blank: choose a class, or '(predicted class)' to explain the prediction.")
        if not 0.0 <= self.threshold < 1.0 or not 0.0 <= self.opacity <= 1.0:
            raise RequestError(
                f"Threshold must be in [0, 1) and opacity in [0, 1]; got {self.threshold} and {self.opacity}."
            )

    def exported(self, *, images: Sequence[Path], region: Path | None, out_dir: Path) -> ExplainRequest:
        """The same choices with the inputs as files (what `build_command` needs)."""
        return dataclasses.replace(self, images=tuple(images), region=region, out_dir=out_dir)


def build_command(request: ExplainRequest, *, launcher: Sequence[str] | None = None) -> list[str]:
    """The argument list that runs `request` with JSON progress on stderr.

    Args:
        request: what to run; validated first (raises `RequestError`).
        launcher: the program prefix; default `[sys.executable, "-c", LAUNCHER]`. Pass `["voxcause"]` to use
            the console script, or `[path_to_PythonSlicer, "-c", LAUNCHER]` inside Slicer.

    Returns:
        `[*launcher, "explain" | "counterfactual", IMAGE..., --model M, ..., --out DIR, --progress json]`;
        options left at the core's default (None) are not sent, so the core's own defaults apply.
    """
    request.validate()
    if request.out_dir is None:
        raise RequestError("No output folder: export the request first (ExplainRequest.exported).")
    prefix = list(launcher) if launcher is not None else [sys.executable, "-c", LAUNCHER]
    images = [os.fspath(p) for p in request.images]
    args: list[str]
    if request.method.is_counterfactual:
        args = ["counterfactual", *images, "--model", request.model, "--mask", os.fspath(request.region)]
        if request.target is not None:
            args += ["--target", str(request.target)]
        args += ["--device", request.device.value, "--seed", str(request.seed)]
    else:
        args = ["explain", *images, "--model", request.model, "--method", request.method.value]
        if request.target is not None:
            args += ["--target", str(request.target)]
        if request.region is not None:
            args += ["--region", os.fspath(request.region)]
        args += ["--device", request.device.value, "--seed", str(request.seed)]
        if request.iterations is not None and request.method.sends("iterations"):
            args += ["--iterations", str(request.iterations)]
        if request.occlusion is not None and request.method.sends("occlusion"):
            value = (
                request.occlusion.value if isinstance(request.occlusion, Occlusion) else os.fspath(request.occlusion)
            )
            args += ["--occlusion", value]
    args += ["--out", os.fspath(request.out_dir), "--progress", "json"]
    return prefix + args


def build_report_command(out_dir: Path, *, launcher: Sequence[str] | None = None) -> list[str]:
    """`voxcause report DIR`: the report.md shown in the results area (run after a successful explanation)."""
    prefix = list(launcher) if launcher is not None else [sys.executable, "-c", LAUNCHER]
    return [*prefix, "report", os.fspath(out_dir), "--progress", "json"]
