"""A sanity check that ran travels from summary.json through findings into the report."""

from __future__ import annotations

import pytest
from voxcause.findings.findings import validate_findings
from voxcause.report.template import render_markdown

SANITY = {
    "method": "rex", "verdict": "pass", "reason": "the map changes with the model (rank correlation 0.14 with a "
    "random model)", "steps": [{"randomized": 0.333, "layers": 9, "rank_correlation": 0.81, "ssim": 0.7},
                               {"randomized": 1.0, "layers": 25, "rank_correlation": 0.14, "ssim": 0.2}],
}


def test_the_report_shows_the_sanity_check_when_it_ran(glioma_findings):
    assert "depend on the model" not in render_markdown(glioma_findings)  # not run: not mentioned
    findings = {**glioma_findings, "sanity": SANITY}
    validate_findings(findings)
    text = render_markdown(findings)
    assert "**Sanity check: pass** — the map changes with the model (rank correlation 0.14" in text
    assert "| 33% | 0.81 | 0.70 |" in text and "| 100% | 0.14 | 0.20 |" in text


def test_a_malformed_sanity_block_is_refused(glioma_findings):
    with pytest.raises(Exception, match="verdict|enum"):
        validate_findings({**glioma_findings, "sanity": {**SANITY, "verdict": "fine"}})
