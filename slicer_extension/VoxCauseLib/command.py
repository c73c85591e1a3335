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

from .options import Device, Method, Occlusion

#: Runs the core's console entry point from any Python that has `voxcause` installed (PythonSlicer included),
#: without relying on the `voxcause` script being on PATH. `main()` reads `sys.argv[1:]`.
LAUNCHER = "import sys; from voxcause.cli.main import main; sys.exit(main())"

MAX_ITERATIONS = 500


#: One-line messages for choices that cannot run (shared with `job`, which checks them before exporting).
NO_VOLUME = "No input volume selected: choose the image in 'Input volume' and press Apply again."
NO_MODEL = "No model selected: pick a sample model or choose a model file / MONAI bundle folder."
NO_REGION = "A counterfactual needs a region: choose a segmentation and a segment under 'Region'."


def model_not_found(model: str) -> str:
    """Message for a model path that does not exist."""
    return f"Model not found: {model}. Choose an existing model file or bundle folder."


class RequestError(ValueError):
    """A choice in the panel that cannot run; the message says what to change."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExplainRequest:
    """Everything one run needs, as plain values (paths, not MRML nodes).

    Args:
        images: one file per input channel, in the model's channel order (e.g. T1, T1c, T2, FLAIR).
        model: a model card (.json/.yaml), TorchScript/ONNX/.pt2 file, or a MONAI bundle folder.
        out_dir: folder the run writes (map.nii.gz, explanation.seg.nrrd, summary.json, overview.png).
        method: what explains the decision; `Method.COUNTERFACTUAL` runs `voxcause counterfactual`.
        target: class label or index to explain; None = the predicted class.
        region: a mask file (a segment exported by the panel); required for counterfactuals, optional
            otherwise (`--region`: explain a segmenter's class inside that region).
        device: CPU or CUDA. CPU also hides the GPUs from the process (see `process.child_environment`).
        seed: random seed (recorded in summary.json; same seed, same map).
        iterations: causal-search iterations (ReX only); None = the core's default.
        occlusion: what replaces occluded voxels, or a path to a baseline image; None = the core's default.
    """

    images: tuple[Path, ...]
    model: str
    out_dir: Path
    method: Method = Method.REX
    target: str | None = None
    region: Path | None = None
    device: Device = Device.CPU
    seed: int = 0
    iterations: int | None = None
    occlusion: Occlusion | Path | None = None

    def validate(self) -> None:
        """Raise `RequestError` for a request that cannot run; the message names the fix."""
        if not self.images:
            raise RequestError("No input volume selected: choose the image in 'Input volume' and press Apply again.")
        if not self.model:
            raise RequestError("No model selected: pick a sample model or choose a model file / MONAI bundle folder.")
        model_path = Path(self.model)
        if not model_path.exists():
            raise RequestError(f"Model not found: {self.model}. Choose an existing model file or bundle folder.")
        if self.method.is_counterfactual and self.region is None:
            raise RequestError("A counterfactual needs a region: choose a segmentation and a segment under 'Region'.")
        if self.iterations is not None and not 1 <= self.iterations <= MAX_ITERATIONS:
            raise RequestError(f"Iterations must be between 1 and {MAX_ITERATIONS}; got {self.iterations}.")
        if self.seed < 0:
            raise RequestError(f"Seed must be 0 or more; got {self.seed}.")
        if self.target is not None and not str(self.target).strip():
            raise RequestError("Target is blank: choose a class, or '(predicted class)' to explain the prediction.")


def build_command(request: ExplainRequest, *, launcher: Sequence[str] | None = None) -> list[str]:
    """The argument list that runs `request` with JSON progress on stderr.

    Args:
        request: what to run; validated first (raises `RequestError`).
        launcher: the program prefix; default `[sys.executable, "-c", LAUNCHER]`. Pass `["voxcause"]` to use
            the console script, or `[path_to_PythonSlicer, "-c", LAUNCHER]` inside Slicer.

    Returns:
        `[*launcher, "explain" | "counterfactual", IMAGE..., --model M, ..., --out DIR, --progress json]`.
    """
    request.validate()
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
        if request.iterations is not None and request.method.uses_iterations:
            args += ["--iterations", str(request.iterations)]
        if request.occlusion is not None:
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
