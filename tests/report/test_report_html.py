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


def test_findings_figure_puts_the_patients_right_on_the_viewers_left(tmp_path, monkeypatch):
    """The findings figure (and the probability figure beside it) follow overview.png's radiological convention
    whatever the file's orientation: a lesion in the patient's right hemisphere is drawn in the left half of the
    axial and coronal panels, and the edges are marked (R left, L right, A up)."""
    import matplotlib.pyplot as plt
    import numpy as np
    import SimpleITK as sitk
    from PIL import Image
    from voxcause.report import html as report_html
    from voxcause.report import probability_figure as beside
    from voxcause.report.probability_figure import probability_figure

    shape = (12, 20, 20)  # (z, y, x)
    letters: list[dict] = []  # each panel's edge letters, as drawn
    draw = report_html.draw_markers
    for module in (report_html, beside):
        monkeypatch.setattr(module, "draw_markers", lambda axis, place, **kw: (letters.append(place.markers()),
                                                                              draw(axis, place, **kw)))
    for stored, direction in (("LPS", (1, 0, 0, 0, 1, 0, 0, 0, 1)), ("RAS", (-1, 0, 0, 0, -1, 0, 0, 0, 1))):
        folder = tmp_path / stored
        folder.mkdir()
        right_x = 3 if stored == "LPS" else 16  # LPS: x grows to the left, so the right is at small x
        values = np.zeros(shape, np.float32)
        values[5:8, 8:12, right_x - 2:right_x + 2] = 0.3  # violet on the heat scale, which tops at the peak voxel
        values[6, 10, right_x] = 1.0
        paths = []
        for name, array in (("map", values), ("t1", np.ones(shape, np.float32))):
            image = sitk.GetImageFromArray(array)
            image.SetDirection(direction)
            sitk.WriteImage(image, str(folder / f"{name}.nii.gz"))
            paths.append(folder / f"{name}.nii.gz")
        centre = sitk.ReadImage(str(paths[0])).TransformContinuousIndexToPhysicalPoint((right_x, 9.5, 6.0))
        findings = {"input": {"paths": [str(paths[1])]}, "mask": {"threshold": 0.5},
                    "components": [{"centroid_ras_mm": [-centre[0], -centre[1], centre[2]], "volume_ml": 0.05}]}
        letters.clear()
        png = report_html.findings_figure(folder, findings)
        plt.close("all")
        picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
        red = picture[..., 0] > picture[..., 1] + 40  # the heat scale's violet-orange, not the yellow markers
        width = picture.shape[1]
        for panel in (0, 1):  # axial, coronal: each a third of the figure
            columns = np.nonzero(red[:, panel * width // 3:(panel + 1) * width // 3].any(0))[0]
            assert columns.size and columns.mean() < width / 6, (stored, panel)
            assert letters[panel]["left"] == "R" and letters[panel]["right"] == "L"
        assert letters[0]["top"] == "A" and letters[2] == {"left": "A", "right": "P", "top": "S", "bottom": "I"}
        # the probability figure beside it: the same convention in its responsibility panel
        probability = sitk.GetImageFromArray(values)
        probability.SetDirection(direction)
        sitk.WriteImage(probability, str(folder / "probability.nii.gz"))
        letters.clear()
        png = probability_figure(folder, paths[1])
        plt.close("all")
        picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
        red = picture[..., 0] > picture[..., 1] + 40
        columns = np.nonzero(red[:, : picture.shape[1] // 2].any(0))[0]  # the first of two panels
        assert columns.size and columns.mean() < picture.shape[1] / 4, stored
        assert letters[0] == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
