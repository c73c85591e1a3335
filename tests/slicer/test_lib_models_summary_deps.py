"""Sample-model listing, results text, and the dependency check."""

import json

import pytest
from VoxCauseLib.deps import missing_requirements, read_requirements, requirement_name
from VoxCauseLib.models import list_sample_models, read_card, samples_root
from VoxCauseLib.summary import summary_lines, summary_text


def _card(folder, name, **fields):
    folder.mkdir(parents=True)
    (folder / "card.json").write_text(json.dumps({"name": name, **fields}))


def test_models_are_listed_from_their_cards_and_a_broken_one_is_skipped(tmp_path):
    _card(
        tmp_path / "b",
        "brain-tumour",
        task="classification",
        labels=["no tumour", "glioma"],
        channels=["T1", "T1c", "T2", "FLAIR"],
        description="4-sequence MRI",
        spatial_size=[48, 56, 48],
    )
    _card(tmp_path / "a", "ablation", task="segmentation", labels=["background", "lesion"], channels=1)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "card.json").write_text("{not json")
    models = list_sample_models(tmp_path)
    assert [m.name for m in models] == ["ablation", "brain-tumour"]
    assert models[0].channels == ("channel 1",) and models[0].channel_count == 1
    assert models[1].channel_count == 4 and models[1].labels == ("no tumour", "glioma")
    assert (models[0].spatial_dims, models[1].spatial_dims) == (None, 3)
    assert list_sample_models(tmp_path / "missing") == []
    with pytest.raises(ValueError, match="Choose a valid card"):
        read_card(tmp_path / "broken" / "card.json")


def test_installed_sample_models_are_found_without_importing_voxcause():
    root = samples_root()
    if root is None:
        pytest.skip("voxcause (with samples/models) is not installed in this Python")
    entries = list_sample_models(root)
    assert [e.name for e in entries] == ["classifier2d", "classifier3d", "segmenter3d", "shortcut3d"]
    assert len(entries) == len(list(root.glob("*/card.json")))  # none skipped as broken
    by_name = {e.name: e for e in entries}
    assert by_name["classifier3d"].channels == ("T1", "T1c", "T2", "FLAIR")
    assert by_name["classifier3d"].task == "classification" and by_name["classifier3d"].spatial_dims == 3
    assert by_name["segmenter3d"].task == "segmentation" and by_name["classifier2d"].spatial_dims == 2


def test_yaml_cards_and_bundles_are_read_like_json_cards(tmp_path):
    from VoxCauseLib.models import read_model

    pytest.importorskip("yaml")
    card = tmp_path / "card.yaml"
    card.write_text("name: tumour\ntask: classification\nlabels: [none, glioma]\nchannels: [T1, FLAIR]\n"
                    "spatial_size: [32, 32, 32]\n")
    entry = read_model(card)
    assert (entry.name, entry.task, entry.labels, entry.channel_count, entry.spatial_dims) == (
        "tumour", "classification", ("none", "glioma"), 2, 3
    )
    (tmp_path / "broken.yml").write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match="Cannot read model card .*broken.yml") as info:
        read_model(tmp_path / "broken.yml")
    assert "\n" not in str(info.value)
    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "configs" / "metadata.json").write_text(json.dumps({
        "name": "brats", "network_data_format": {
            "inputs": {"image": {"num_channels": 4}},
            "outputs": {"pred": {"channel_def": {"0": "background", "1": "tumour"}}},
        }
    }))
    entry = read_model(bundle)
    assert (entry.name, entry.channel_count, entry.labels) == ("brats", 4, ("background", "tumour"))
    (tmp_path / "model.ts").write_bytes(b"x")
    assert read_model(tmp_path / "model.ts") is None  # a bare file: one channel unless a card says otherwise


def test_summary_lines_for_an_explanation_and_a_counterfactual(tmp_path):
    lines = summary_lines(
        {
            "method": "rex",
            "target": {"index": 2, "label": "glioma"},
            "score": 0.9312,
            "forward_passes": 812,
            "seconds": 12.34,
            "device": "cpu",
            "sufficient": {"voxels": 345, "fraction": 0.0123, "score": 0.71},
        }
    )
    assert lines == [
        "Target: glioma (class 2)",
        "Method: rex",
        "Score on the input: 0.931",
        "Sufficient explanation: 345 model voxels, 1.23% of the searched box, score 0.710",
        "Cost: 812 forward passes, 12.3 s, on cpu",
    ]
    # today's summary.json: the size on the image's voxels, as the overview and explanation.seg.nrrd count it
    sized = summary_lines({"sufficient": {"voxels": 7, "fraction": 0.0001, "score": 0.51},
                           "mask_sizes": {"sufficient": {"image_voxels": 2760, "ml": 2.76}}})
    assert sized == ["Sufficient explanation: 2,760 image voxels (2.76 ml), 0.01% of the searched box, score 0.510"]
    cf = summary_lines({"p_orig": 0.9, "p_remove": 0.2, "p_only": 0.65, "delta_drop": 0.7, "delta_focus": 0.65})
    assert cf == [
        "P(original): 0.900",
        "P(region removed): 0.200",
        "P(region only): 0.650",
        "ΔDrop: 0.700",
        "ΔFocus: 0.650",
    ]
    (tmp_path / "summary.json").write_text(json.dumps({"method": "gradcam"}))
    (tmp_path / "report.md").write_text("# Report\nThe map peaks in the lesion.\n")
    assert summary_text(tmp_path) == "Method: gradcam\n\n# Report\nThe map peaks in the lesion."
    assert summary_text(tmp_path / "nothing") == ""


@pytest.mark.parametrize("verdict,headline", [
    ("pass", "Certificate: PASS"),
    ("weak", "Certificate: WEAK (read with care)"),
    ("fail", "Certificate: FAIL (do not read this map as the cause)"),
])
def test_the_certificate_verdict_comes_first(verdict, headline):
    certificate = {"verdict": verdict, "reason": "the explanation covers 91% of the searched region", "checks": []}
    lines = summary_lines({"method": "rex", "certificate": certificate})
    assert lines == [headline, "  the explanation covers 91% of the searched region", "Method: rex"]


def test_requirements_check(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("# comment\npytest>=7  # installed here\n\nsurely-not-installed-pkg-xyz==1.0\n")
    assert read_requirements(path) == ["pytest>=7", "surely-not-installed-pkg-xyz==1.0"]
    assert missing_requirements(path) == ["surely-not-installed-pkg-xyz==1.0"]
    assert requirement_name("monai[all]>=1.3") == "monai"
    with pytest.raises(ValueError):
        requirement_name(">=1")


def test_voxcause_installs_from_the_repository_or_a_shipped_wheel(tmp_path):
    """voxcause is on no package index: the module installs it from its own wheel, else its repository."""
    from pathlib import Path

    from VoxCauseLib.deps import install_arguments, own_package_source

    module_dir = Path(__file__).resolve().parents[2] / "slicer_extension"
    assert own_package_source(module_dir) == str(module_dir.parent)  # this checkout
    assert install_arguments(["monai>=1.3", "voxcause>=0.1"], module_dir) == ["monai>=1.3", str(module_dir.parent)]
    shipped = tmp_path / "ext"
    (shipped / "Resources" / "wheels").mkdir(parents=True)
    for version in ("0.1.0", "0.2.0"):
        (shipped / "Resources" / "wheels" / f"voxcause-{version}-py3-none-any.whl").write_bytes(b"")
    assert own_package_source(shipped).endswith("voxcause-0.2.0-py3-none-any.whl")
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    with pytest.raises(RuntimeError, match="slicer.util.pip_install"):
        install_arguments(["voxcause>=0.1"], lonely)
