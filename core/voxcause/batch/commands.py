"""The per-case work of each batch command, calling the public core functions.

Each command is a function ``(case, job, out_dir) -> dict`` that writes the case's outputs into ``out_dir``
(a fresh staging folder) and returns at least ``score``, ``forward_passes`` and ``target`` (a label) for the
results table. A command whose core function is not installed reports that in one line before the batch
starts instead of failing case by case.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError
from .hashing import model_digest
from .job import COMMAND_NAMES, Job
from .manifest import Case

CaseFunction = Callable[[Case, Job, Path], dict[str, Any]]


_CACHE = threading.local()


def _image(case: Case) -> str | list[str]:
    return case.image[0] if len(case.image) == 1 else list(case.image)


def _model(case: Case, job: Job) -> Any:
    """The case's model, loaded once per worker thread and reused while consecutive cases share it.

    A cohort usually has one model; loading it per case would cost a network build and a weights read each
    time. The cache key holds the model's content digest, so a changed file is reloaded. Forward passes
    are counted per call (`voxcause.explain` reports the difference), so reuse does not mix cases' counts.
    """
    from ..models import load_model

    key = (case.model, model_digest(case.model), job.device, json.dumps(dict(job.model_options), sort_keys=True))
    cached = getattr(_CACHE, "model", None)
    if cached is None or cached[0] != key:
        _CACHE.model = None  # free the old model before loading the next
        _CACHE.model = (key, load_model(case.model, device=job.device, **dict(job.model_options)))
    return _CACHE.model[1]


def _summary_fields(summary: dict[str, Any]) -> dict[str, Any]:
    from ..causal.auto import VERDICT_ORDER
    from ..explanation import TARGETS_SCHEMA

    if summary.get("schema") == TARGETS_SCHEMA:  # target "all": one row, its targets named, the worst verdict
        targets = summary["targets"]
        verdicts = [entry["certificate"]["verdict"] for entry in targets]
        return {"score": None, "forward_passes": summary.get("forward_passes"),
                "target": ", ".join(entry["name"] for entry in targets),
                "certificate": max(verdicts, key=VERDICT_ORDER.index)}
    target = summary.get("target")
    label = target.get("label") if isinstance(target, dict) else target
    return {
        "score": summary.get("score"),
        "forward_passes": summary.get("forward_passes"),
        "target": None if label is None else str(label),
        "certificate": (summary.get("certificate") or {}).get("verdict"),
    }


#: ``--command-option`` keys of ``explain`` (and of ``findings``' explain step): `voxcause.explain` arguments.
EXPLAIN_COMMAND_OPTIONS = ("channel_order_checked", "max_memory")


def explain_case(case: Case, job: Job, out_dir: Path) -> dict[str, Any]:
    """`voxcause.explain` one case (the manifest's mask is the region for a segmenter) and save it."""
    from ..api import explain

    explanation = explain(
        _image(case),
        model=_model(case, job),
        target=case.target,
        method=job.method,
        region=case.mask,
        seed=job.seed,
        device=job.device,
        progress=False,  # the batch shows its own bar; workers share its terminal
        **{key: value for key, value in job.command_options.items() if key in EXPLAIN_COMMAND_OPTIONS},
        **dict(job.options),
    )
    explanation.save(out_dir)
    return _summary_fields(explanation.summary())


def counterfactual_case(case: Case, job: Job, out_dir: Path) -> dict[str, Any]:
    """`voxcause.counterfactual.counterfactual` one case: the region is the manifest's ``mask`` (or
    ``--mask``), unless the command options name another source (``segmenter``, ``explanation_method``)."""
    from ..counterfactual import counterfactual

    result = counterfactual(
        _image(case),
        model=_model(case, job),
        mask=case.mask,
        target=case.target,
        seed=job.seed,
        device=job.device,
        **dict(job.command_options),
    )
    result.save(out_dir)
    return _summary_fields(result.summary())


def findings_case(case: Case, job: Job, out_dir: Path) -> dict[str, Any]:
    """Explain one case, then map the explanation to named regions (``findings.json`` in the same folder).

    The manifest's mask, if any, is both the segmenter region and the reference for the findings' Dice.
    """
    from ..findings import make_findings, write_findings

    fields = explain_case(case, job, out_dir)
    own = {key: value for key, value in job.command_options.items() if key not in EXPLAIN_COMMAND_OPTIONS}
    options = {"reference_mask": case.mask, "seed": job.seed, **own}
    write_findings(out_dir, make_findings(out_dir, **options))
    return fields


_FUNCTIONS: dict[str, CaseFunction] = {
    "explain": explain_case,
    "counterfactual": counterfactual_case,
    "findings": findings_case,
}
_NEEDS = {
    "explain": [("voxcause.api", "explain")],
    "counterfactual": [("voxcause.counterfactual", "counterfactual")],
    "findings": [("voxcause.api", "explain"), ("voxcause.findings", "make_findings")],
}


def unavailable(command: str) -> str | None:
    """Why ``command`` cannot run in this installation (None when it can)."""
    if ":" in command:
        return None
    if command not in COMMAND_NAMES:
        return f"unknown batch command {command!r} — use one of {', '.join(COMMAND_NAMES)}"
    missing = []
    for module_name, attribute in _NEEDS[command]:
        try:
            found = callable(getattr(importlib.import_module(module_name), attribute, None))
        except ImportError:
            found = False
        if not found:
            missing.append(f"{module_name}.{attribute}")
    if missing:
        return (
            f"batch --command {command} is unavailable: this voxcause has no {', '.join(missing)}() — "
            "install a voxcause version that provides it or choose another --command"
        )
    return None


def case_function(command: str) -> CaseFunction:
    """The per-case function of ``command``; raises `InputError` when the core lacks it.

    ``command`` may also be ``"package.module:function"``, a user's own per-case function with the same
    signature (it must be importable on every worker).
    """
    if ":" in command:
        module_name, _, attribute = command.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise InputError(
                f"cannot import the case function {command!r} ({error}) — check the module path"
            ) from None
    problem = unavailable(command)
    if problem:
        raise InputError(problem)
    return _FUNCTIONS[command]
