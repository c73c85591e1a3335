"""report.html is one self-contained file: pictures inline, no external references, text escaped."""

from __future__ import annotations

import base64
import io
import json
import re

from voxcause.report import make_report
from voxcause.report.html import markdown_to_html


def test_report_writes_self_contained_page(case_dir):
    record = make_report(case_dir, atlas=None)
    assert record["renderer"] == "template" and record["llm"] is None
    page = (case_dir / "report.html").read_text(encoding="utf-8")
    md = (case_dir / "report.md").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page
    sources = re.findall(r'src="([^"]+)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    png = base64.b64decode(sources[0].split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert not re.search(r"""(href|src)=["']?(https?:|file:|/)""", page)
    assert "0.5 ml" in md and "tumour (class 1)" in md  # 64 voxels of 8 mm^3 = 0.512 ml
    stats = json.loads((case_dir / "report.json").read_text(encoding="utf-8"))["text_stats"]["template"]
    assert stats["words"] > 20 and 0 < stats["type_token_ratio"] <= 1


def test_markdown_is_escaped():
    md = "## Summary\n\n<script>alert(1)</script> **bold** & *it*\n\n| a | b |\n|---|---|\n| <i> | 2 |"
    out = markdown_to_html(md)
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "<strong>bold</strong> &amp; <em>it</em>" in out
    assert "<td>&lt;i&gt;</td>" in out


def test_report_shows_the_models_probability_beside_the_responsibility(case_dir):
    """A segmenter's folder (probability.nii.gz, uncertainty.nii.gz): one more figure, three panels on the map's
    peak slice; a classifier's folder (no probability) keeps the figures it had."""
    import numpy as np
    import SimpleITK as sitk
    from PIL import Image
    from voxcause.report.probability_figure import probability_figure

    assert probability_figure(case_dir) is None
    reference = sitk.ReadImage(str(case_dir / "map.nii.gz"))
    for name, scale in (("probability", 0.9), ("uncertainty", 0.2)):
        values = sitk.GetImageFromArray(sitk.GetArrayFromImage(reference) * scale)
        values.CopyInformation(reference)
        sitk.WriteImage(values, str(case_dir / f"{name}.nii.gz"))
    png = probability_figure(case_dir, case_dir / "t1.nii.gz", label="tumour")
    picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert picture.shape[1] > 2.5 * picture.shape[0]  # three panels side by side
    make_report(case_dir, atlas=None)
    page = (case_dir / "report.html").read_text(encoding="utf-8")
    assert "probability next to the responsibility" in page
