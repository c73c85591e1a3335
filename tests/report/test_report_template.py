"""The template report is deterministic and says only what the numbers carry."""

from __future__ import annotations

import copy
from pathlib import Path

from voxcause.report.template import narrative, render_markdown
from voxcause.report.textstats import text_stats

GOLDEN = Path(__file__).parent / "data" / "report_glioma.md"


def test_template_report_is_stable(glioma_findings):
    md = render_markdown(glioma_findings, text_stats={"template": text_stats(narrative(glioma_findings))})
    assert md == render_markdown(copy.deepcopy(glioma_findings),
                                 text_stats={"template": text_stats(narrative(glioma_findings))})
    assert md == GOLDEN.read_text(encoding="utf-8")  # regenerate deliberately if the template changes


def test_wording_follows_the_stated_cut_offs(glioma_findings):
    f = copy.deepcopy(glioma_findings)
    assert "depends strongly on this region" in narrative(f)  # delta_drop 0.72 >= 0.5
    assert "overlaps most with the Right Frontal Pole (11.3% of the found region)" in narrative(f)
    f["counterfactual"].update(delta_drop=0.3, p_remove=0.63)
    assert "depends partly on this region" in narrative(f)
    f["counterfactual"].update(delta_drop=0.05, p_remove=0.88, p_only=0.2)
    text = narrative(f)
    assert "does not depend on this region alone" in text and "does not suffice on its own" in text
    f["regions"][0]["fraction_of_mask"] = 0.7
    assert "lies mainly in the Right Frontal Pole" in narrative(f)


def test_empty_mask_and_skipped_atlas_are_said_plainly(glioma_findings):
    f = copy.deepcopy(glioma_findings)
    f["mask"].update(voxels=0, volume_ml=0.0, n_components=0)
    assert "no distinct peak" in narrative(f)
    f = copy.deepcopy(glioma_findings)
    f["regions"] = []
    f["atlas"].update(used=False, skipped_reason="registration to MNI failed (NCC 0.12, brain Dice 0.40)")
    assert "No anatomical names are given: registration to MNI failed" in narrative(f)


def test_a_failed_certificate_is_said_first_and_never_reads_like_success(glioma_findings):
    f = copy.deepcopy(glioma_findings)
    f["certificate"].update(verdict="fail", reason="3 of 4 size-matched controls from the least responsible voxels "
                            "keep the decision too")
    f["certificate"]["checks"][3].update(value=0.75, passed=False)
    md = render_markdown(f)
    assert "**Certificate: FAIL. Do not read this map as the cause of the model's decision**: 3 of 4" in md
    assert "| controls fail | 0.75 | 0.00 | no |" in md
    assert "failed its certificate" in narrative(f)
    assert md.index("Can this explanation be trusted?") < md.index("## How this was computed")
    assert "Certificate: pass" in render_markdown(glioma_findings)


def test_the_sufficient_explanation_is_sized_as_the_overview_and_the_segmentation_file_size_it(glioma_findings):
    """The map's thresholded region and the sufficient explanation are two things: the report names both, the
    explanation in image voxels and ml as summary.json's ``mask_sizes`` (and overview.png) give it."""
    from voxcause.findings.findings import validate_findings

    f = copy.deepcopy(glioma_findings)
    text = narrative(f)
    assert "map's responsible region (its voxels above the adaptive threshold) is one connected region of 32.6 ml" in text
    assert "sufficient explanation" not in text  # frozen findings from before the sizes: nothing invented
    f["explanation"]["mask_sizes"] = {"sufficient": {"image_voxels": 2760, "ml": 2.76}}
    validate_findings(f)
    assert "(the sufficient explanation) is 2.76 ml (2,760 image voxels)." in narrative(f)
