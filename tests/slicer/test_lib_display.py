"""Display specifications: heat colour table, threshold/opacity values, colour-table file, layouts."""

import xml.etree.ElementTree as ET

import pytest
from VoxCauseLib import display


def test_heat_table_runs_dark_red_to_pale_yellow_and_gets_brighter():
    colors = display.heat_colors()
    assert len(colors) == 256
    assert colors[0] == pytest.approx((0.35, 0.0, 0.0, 1.0))
    assert colors[-1] == pytest.approx((1.0, 1.0, 0.75, 1.0))
    brightness = [r + g + b for r, g, b, _ in colors]
    assert all(b2 >= b1 - 1e-12 for b1, b2 in zip(brightness, brightness[1:], strict=False))
    assert all(0.0 <= v <= 1.0 for c in colors for v in c)
    with pytest.raises(ValueError):
        display.heat_colors(1)


def test_color_table_text_is_slicers_format():
    text = display.color_table_text()
    rows = [line.split() for line in text.splitlines() if not line.startswith("#")]
    assert len(rows) == 256
    assert rows[0] == ["0", "VoxCauseHeat0", "89", "0", "0", "255"]
    assert rows[255] == ["255", "VoxCauseHeat255", "255", "255", "191", "255"]
    assert all(len(r) == 6 and int(r[0]) == i for i, r in enumerate(rows))


def test_write_color_table_is_atomic(tmp_path):
    path = display.write_color_table(tmp_path / display.HEAT_TABLE_FILE)
    assert path.read_text(encoding="utf-8") == display.color_table_text()
    assert [p.name for p in tmp_path.iterdir()] == [display.HEAT_TABLE_FILE]


@pytest.mark.parametrize(
    ("low", "high", "threshold", "lower", "window"),
    [
        (0.0, 2.0, 0.5, 1.0, (1.0, 2.0)),
        (0.0, 1.0, 0.0, 0.0, (0.0, 1.0)),
        (-1.0, 1.0, 0.25, -0.5, (-0.5, 1.0)),
        (0.2, 0.8, 0.5, 0.4, (0.4, 0.8)),  # maps are shown from 0, not from their minimum
        (0.0, 0.0, 0.5, 0.5, (0.5, 1.0)),  # an all-zero map still gets a valid window
    ],
)
def test_map_display_values(low, high, threshold, lower, window):
    spec = display.map_display(low, high, threshold=threshold, opacity=0.3)
    assert spec.lower == pytest.approx(lower)
    assert (spec.window_min, spec.window_max) == pytest.approx(window)
    assert spec.window == pytest.approx(window[1] - window[0])
    assert spec.level == pytest.approx(sum(window) / 2)
    assert spec.opacity == 0.3 and spec.color_table == "VoxCauseHeat"
    assert spec.upper >= spec.lower


@pytest.mark.parametrize("kwargs", [{"threshold": 1.0}, {"threshold": -0.1}, {"opacity": 1.5}])
def test_map_display_rejects_out_of_range(kwargs):
    with pytest.raises(ValueError):
        display.map_display(0.0, 1.0, **kwargs)
    with pytest.raises(ValueError, match="non-finite"):
        display.map_display(0.0, float("nan"))


@pytest.mark.parametrize(
    ("xml", "views"),
    [(display.EXPLANATION_LAYOUT, ["Red", "Yellow"]), (display.COUNTERFACTUAL_LAYOUT, ["Red", "Yellow", "Green"])],
)
def test_layouts_are_axial_views_side_by_side(xml, views):
    root = ET.fromstring(xml)
    assert root.tag == "layout" and root.get("type") == "horizontal"
    found = root.findall("./item/view")
    assert [v.get("singletontag") for v in found] == views
    assert all(v.get("class") == "vtkMRMLSliceNode" for v in found)
    assert all(v.find("./property[@name='orientation']").text == "Axial" for v in found)
    assert display.EXPLANATION_LAYOUT_ID != display.COUNTERFACTUAL_LAYOUT_ID
