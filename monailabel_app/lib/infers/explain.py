"""Explain tasks: a voxcause explanation as heat levels (plus the method's masks) beside the segmentation.

One task per explainer (``explain_rex``, ``explain_saliency``, ``explain_dea``); each calls
`voxcause.explain` with the request's options and keeps the core's own result folder (``map.nii.gz``,
``explanation.seg.nrrd``, ``summary.json``, ``overview.png``) where the user can load the float map.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import voxcause
from voxcause.errors import ErrorCode, InputError

from ..jobs import report_progress
from ..labels import DRAW_LEVELS, Segments, explanation_segments, label_meaning
from ..options import MODEL_OPTION
from .base import VoxcauseInferTask, dicom_files

#: Masks of an explanation drawn as their own segments (others stay in the kept explanation.seg.nrrd).
DRAWN_MASKS = ("sufficient",)


def _in_app_terms(error: InputError, *, task: str, method: str, role: str) -> InputError:
    """The core's refusal of a layer/gradient method on a model without an eager network (its code
    ``needs_network``: TorchScript, ONNX, nnU-Net), with the app's task and option names in place of its
    command-line advice (``--method rex``); any other error unchanged."""
    if error.code is not ErrorCode.NEEDS_NETWORK:
        return error
    reason = str(error).partition(" — ")[0]  # the core's reason, without its command-line advice
    return InputError(f"{task} method={method} cannot explain the {role}: {reason} — use explain_rex, or "
                      "explain_saliency with method=occlusion (or the counterfactual task)", code=error.code)


class ExplainTask(VoxcauseInferTask):
    """Runs one explainer; ``method`` is fixed, or chosen by the ``method`` option when the task has one."""

    keeps_files = True

    def __init__(
        self,
        *,
        method: str,
        prefix: str,
        method_options: tuple[str, ...] = (),
        fixed_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            method: the explainer (a `voxcause.explainers.METHODS` name), or the default of a ``method`` option.
            prefix: start of every segment name of this task (unique across the app).
            method_options: request options passed on to the explainer (e.g. ``iterations``).
            fixed_options: explainer options the task always sets (e.g. rex's ``explanations``).
            **kwargs: `VoxcauseInferTask` arguments.
        """
        self.method = method
        self.prefix = prefix
        self.method_options = method_options
        self.fixed_options = dict(fixed_options or {})
        super().__init__(**kwargs)

    def compute(self, data: dict[str, Any], *, device: str) -> Any:
        options = data["options"]
        method = options.get("method", self.method)
        target = options.get("target", "auto")
        extra = dict(self.fixed_options)
        extra.update({name: options[name] for name in self.method_options if name in options})
        role = options.get(MODEL_OPTION, next(iter(self.model_paths)))
        with self.model(role, device, data) as model:
            try:
                return voxcause.explain(
                    data["volume"],
                    model=model,
                    target=None if target == "auto" else target,
                    method=method,
                    seed=options.get("seed", 0),
                    device=device,
                    progress=report_progress,  # stops the computation when the request is cancelled
                    **extra,
                )
            except InputError as error:
                raise _in_app_terms(error, task=self.name, method=method, role=role) from None

    def segments(self, data: dict[str, Any]) -> Segments:
        explanation = data["result"]
        masks = {key: explanation.masks[key] for key in DRAWN_MASKS if key in explanation.masks}
        verdict = (explanation.certificate or {}).get("verdict")
        return explanation_segments(
            self.prefix, explanation.map, data["options"]["levels"], masks=masks, verdict=verdict,
            draw=data["options"].get("draw", DRAW_LEVELS),
        )

    def numbers(self, data: dict[str, Any]) -> dict[str, Any]:
        summary = data["result"].summary()
        summary.pop("input", None)  # a server temp path for uploads: meaningless to the client
        summary["label_meaning"] = label_meaning(data["segments"].names)
        return summary

    def keep(self, data: dict[str, Any], folder: Path) -> dict[str, Path]:
        """The core's result folder; for a PACS series also its DICOM SEG and Parametric Maps (`dicom_files`),
        which the app stores in the series' study."""
        explanation = data["result"]
        source = self.dicom_volume(data)
        if source is not None:
            replace(explanation, volume=source).save(folder, dicom=True)
        else:
            explanation.save(folder)
        kept = {"map_file": folder / "map.nii.gz", "explanation_file": folder / "explanation.seg.nrrd",
                "summary_file": folder / "summary.json", "overview_file": folder / "overview.png"}
        kept.update({f"{name}_file": folder / file for name, file in explanation.volume_files().items()
                     if name not in ("map", "explanation")})
        return kept | dicom_files(folder)
