"""`voxcause demo`: the whole product on a bundled synthetic glioma case, with nothing to download.

Stages (each writes its own folder under the output, in the case's geometry):

* ``case/`` — the generated patient (T1, T1c, T2, FLAIR, a 4-channel file, the ground-truth label);
* ``classifier/`` — why the 3D classifier says "glioma" (causal responsibility), plus findings and the report;
* ``segmenter/`` — why the 3D segmenter draws its tumour (causal responsibility of the region score);
* ``counterfactual/`` — the classifier with the tumour inpainted away, and with only the tumour kept;
* ``saliency/`` — Grad-CAM++ of the classifier, for comparison with the causal map.

Stages whose optional parts are not installed are skipped with a note.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

from .api import explain
from .errors import InputError
from .explainers import METHODS
from .sizes import mask_size
from .typing import Progress

DEMO_ITERATIONS = 12
#: Seconds each stage took on a shared 2-core CPU (one run): each stage gets that share of the progress bar, so the
#: bar moves with the time spent. Fixed shares had the case's 16 s at 0-2% and the classifier's 9 s at 2-45%.
STAGE_SECONDS = {"case": 16.0, "classifier": 9.0, "segmenter": 35.0, "counterfactual": 6.0, "saliency": 3.0,
                 "findings": 13.0}


def stage_span(stage: str) -> tuple[float, float]:
    """The (start, end) fraction of the demo's progress that ``stage`` (a `STAGE_SECONDS` key) covers."""
    total = sum(STAGE_SECONDS.values())
    names = list(STAGE_SECONDS)
    start = sum(STAGE_SECONDS[name] for name in names[: names.index(stage)]) / total
    return start, start + STAGE_SECONDS[stage] / total


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def run_demo(
    out: str | Path, *, kind: str = "glioma", device: str = "auto", progress: Progress | None = None, seed: int = 0
) -> dict:
    """Run every stage on the sample case of ``kind`` and return a summary of what was written."""
    if not _installed("voxcause.samples") or not _installed("monai") or not _installed("nilearn"):
        raise InputError("the demo needs the sample data and models — pip install 'voxcause[samples]'")
    from .samples import model_path, sample_case

    report = progress or (lambda stage, fraction: None)
    folder = Path(out)
    started = time.perf_counter()
    summary: dict = {"case": kind, "stages": {}}

    def stage_progress(name: str) -> Progress:
        low, high = stage_span(name)
        return lambda stage, fraction: report(f"{name}: {stage}", low + (high - low) * fraction)

    report("generating the sample case", 0.0)
    case = sample_case(folder / "case", kind)
    image, label = case["multichannel"], case["label"]
    summary["case_files"] = {key: str(path) for key, path in case.items()}

    for stage, model_name in (("classifier", "classifier3d"), ("segmenter", "segmenter3d")):
        result = explain(image, model=model_path(model_name), seed=seed, device=device, iterations=DEMO_ITERATIONS,
                         progress=stage_progress(stage))
        result.save(folder / stage)
        summary["stages"][stage] = _brief(result)

    if _installed("voxcause.counterfactual"):
        from .counterfactual import counterfactual

        result = counterfactual(
            image,
            model=model_path("classifier3d"),
            mask=label,
            seed=seed,
            device=device,
            progress=stage_progress("counterfactual"),
        )
        result.save(folder / "counterfactual")
        summary["stages"]["counterfactual"] = json.loads((folder / "counterfactual" / "summary.json").read_text(encoding="utf-8"))

    if "gradcampp" in METHODS:
        saliency = explain(
            image,
            model=model_path("classifier3d"),
            method="gradcampp",
            device=device,
            progress=stage_progress("saliency"),
        )
        saliency.save(folder / "saliency")
        summary["stages"]["saliency"] = _brief(saliency)

    if _installed("voxcause.findings") and _installed("voxcause.report"):
        from .findings import make_findings, write_findings
        from .report import make_report

        report("findings and report", stage_span("findings")[0])
        write_findings(
            folder / "classifier",
            make_findings(
                folder / "classifier", reference_mask=str(label), progress=stage_progress("findings")
            ),
        )
        make_report(folder / "classifier", llm="none")
        summary["stages"]["report"] = str(folder / "classifier" / "report.html")
    summary["seconds"] = time.perf_counter() - started
    (folder / "demo.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    report("done", 1.0)
    return summary


def _brief(explanation) -> dict:
    return {
        "method": explanation.method,
        "target": explanation.target["label"],
        "score": round(explanation.score, 4),
        "forward_passes": explanation.stats["forward_passes"],
        "seconds": round(explanation.stats["seconds"], 1),
        "sufficient": mask_size(explanation.masks["sufficient"], explanation.volume.spacing)
        if "sufficient" in explanation.masks else None,
        "certificate": (explanation.certificate or {}).get("verdict"),
    }
