"""The guard accepts what the findings support and rejects invented numbers, regions, sides and classes."""

from __future__ import annotations

import pytest
from voxcause.report.guard import atlas_vocabulary, check_text
from voxcause.report.template import narrative


def test_template_narrative_passes_its_own_guard(glioma_findings):
    res = check_text(narrative(glioma_findings), glioma_findings, vocabulary=atlas_vocabulary(glioma_findings))
    assert res.ok, res.problems
    assert res.numbers_checked >= 12 and res.mentions_checked >= 3


@pytest.mark.parametrize("text, problem", [
    ("The model relies on a 37.5 ml region.", "number 37.5 is not in the findings"),
    ("The region holds 45% of the attribution.", "number 45% is not in the findings"),
    ("It lies in the right frontal lobe.", "region 'right frontal lobe' is not in the findings"),
    ("It lies in the Left Frontal Pole.", "region 'left frontal pole' is not in the findings"),
    ("It involves the right hippocampus.", "region 'right hippocampus' is not in the findings"),
    ("The finding is in the left hemisphere.", "'left hemisphere' is not supported by the findings"),
    ("This looks like a meningioma.", "class 'meningioma' is mentioned"),
])
def test_guard_rejects_invented_content(glioma_findings, text, problem):
    res = check_text(text, glioma_findings, vocabulary=atlas_vocabulary(glioma_findings))
    assert not res.ok
    assert any(p.startswith(problem) for p in res.problems), res.problems


def test_guard_accepts_rounded_numbers_percentages_and_partial_names(glioma_findings):
    text = ("A 32.6 ml region (about 33 ml, 29.9% of the attribution) centred near x 21, in the right frontal "
            "pole and the right cingulate gyrus; the score falls from 0.93 to 0.21. T1 and MNI152 are not "
            "numbers here, nor is 3D.")
    res = check_text(text, glioma_findings, vocabulary=atlas_vocabulary(glioma_findings))
    assert res.ok, res.problems
