"""`voxcause demo` runs from a fresh install with nothing to download, and its explanations find the tumour."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio
from voxcause.cli.main import main

pytest.importorskip("nilearn")
pytest.importorskip("monai")


@pytest.mark.slow
def test_demo_writes_every_stage_and_the_maps_lie_on_the_tumour(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--progress", "none"]) == 0
    summary = json.loads((out / "demo.json").read_text(encoding="utf-8"))
    assert summary["stages"]["classifier"]["target"] == "glioma"
    printed = capsys.readouterr().out
    for stage in ("classifier", "segmenter"):  # the verdict is said in the terminal, not only in summary.json
        verdict = json.loads((out / stage / "summary.json").read_text(encoding="utf-8"))["certificate"]["verdict"]
        assert summary["stages"][stage]["certificate"] == verdict and f"certificate {verdict.upper()}" in printed
    for stage in ("classifier", "segmenter"):
        for name in ("map.nii.gz", "explanation.seg.nrrd", "summary.json", "overview.png"):
            assert (out / stage / name).stat().st_size > 0
    tumour = sitk.GetArrayFromImage(sitk.ReadImage(str(next((out / "case").glob("*_label.nii.gz"))))) > 0
    for stage in ("classifier", "segmenter"):
        values = sitk.GetArrayFromImage(sitk.ReadImage(str(out / stage / "map.nii.gz")))
        assert tumour.flat[int(np.argmax(values))], stage
        positive = np.clip(values, 0, None)
        assert positive[tumour].sum() > 0.2 * positive.sum(), stage
    assert summary["stages"]["counterfactual"]["delta_drop"] > 0.5
    for stage in ("classifier", "segmenter"):  # one size of the explanation everywhere: the file, the summary
        stage_summary = json.loads((out / stage / "summary.json").read_text(encoding="utf-8"))
        seg = slicerio.read_segmentation(str(out / stage / "explanation.seg.nrrd"))
        segment = next(s for s in seg["segments"] if s["name"] == "sufficient explanation")
        layer = seg["voxels"] if seg["voxels"].ndim == 3 else seg["voxels"][segment["layer"]]
        voxels = int((layer == segment["labelValue"]).sum())
        size = stage_summary["mask_sizes"]["sufficient"]
        assert size["image_voxels"] == voxels > 0, stage
        spacing = sitk.ReadImage(str(out / stage / "map.nii.gz")).GetSpacing()
        assert size["ml"] == pytest.approx(voxels * np.prod(spacing) / 1000, abs=1e-4), stage
        if stage == "segmenter":  # an InstanceNorm UNet: explained on the shuffled canvas, the explanation on the
            # tumour (on constant 0 it was 560 ml with a slab far below it, to restore the image's statistics)
            assert stage_summary["stats"]["occlusion_used"] == "shuffle"
            assert (layer == segment["labelValue"]).transpose()[tumour].sum() >= 0.5 * voxels  # measured 0.71


def test_demo_stages_share_the_bar_by_their_measured_seconds():
    """Each stage covers its share of the measured time, in order, without gaps: the bar moves with the clock."""
    from voxcause.demo import STAGE_SECONDS, stage_span

    spans = [stage_span(name) for name in STAGE_SECONDS]
    assert spans[0][0] == 0.0 and spans[-1][1] == pytest.approx(1.0)
    assert all(a[1] == pytest.approx(b[0]) for a, b in zip(spans, spans[1:], strict=False))
    total = sum(STAGE_SECONDS.values())
    assert stage_span("segmenter")[1] - stage_span("segmenter")[0] == pytest.approx(STAGE_SECONDS["segmenter"] / total)
