"""The .ui against the code, the CMake lists against the files, and the extension metadata.

Static checks read VoxCause.py with `ast` (it imports Slicer, so it cannot be imported here); the `.ui` is
parsed as XML and, where PySide6 is installed, also loaded by Qt's own loader offscreen.
"""

import ast
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO / "slicer_extension"

UI_FILE = MODULE_DIR / "Resources" / "UI" / "VoxCause.ui"
MODULE_FILE = MODULE_DIR / "VoxCause.py"

#: Widget class (as written in the .ui) that the parameter node wrapper can bind to each field type.
BINDINGS = {
    "vtkMRMLScalarVolumeNode": {"qMRMLNodeComboBox"},
    "vtkMRMLSegmentationNode": {"qMRMLNodeComboBox"},
    "int": {"QSpinBox", "QSlider"},
    "float": {"ctkSliderWidget", "QDoubleSpinBox", "ctkDoubleSpinBox"},
    "bool": {"QCheckBox", "ctkCheckBox"},
    "str": {"QLineEdit", "QTextEdit", "QLabel"},
    "Method": {"QComboBox", "ctkComboBox"},
    "Occlusion": {"QComboBox", "ctkComboBox"},
    "Device": {"QComboBox", "ctkComboBox"},
}
#: Fields the widget syncs itself (their combo boxes are filled at run time) or that hold results.
MANUAL_FIELDS = {
    "modelName",
    "modelPath",
    "target",
    "regionSegmentId",
    "mapVolume",
    "explanationSegmentation",
    "resultsFolder",
}


def _module_tree():
    return ast.parse(MODULE_FILE.read_text(encoding="utf-8"))


def parameter_fields() -> dict[str, str]:
    """Field name -> base type name of the class decorated with @parameterNodeWrapper."""
    for node in ast.walk(_module_tree()):
        if isinstance(node, ast.ClassDef) and any(
            isinstance(d, ast.Name) and d.id == "parameterNodeWrapper" for d in node.decorator_list
        ):
            fields = {}
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    annotation = item.annotation
                    if isinstance(annotation, ast.Subscript):  # Annotated[int, WithinRange(...)]
                        annotation = annotation.slice.elts[0]
                    fields[item.target.id] = ast.unparse(annotation)
            return fields
    raise AssertionError("no @parameterNodeWrapper class in VoxCause.py")


def ui_names_used_in_code() -> set[str]:
    """Every `self.ui.<name>` the module reads."""
    names = set()
    for node in ast.walk(_module_tree()):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "ui"
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "self"
        ):
            names.add(node.attr)
    return names


def ui_widgets() -> dict[str, tuple[str, str | None]]:
    """Widget name -> (class, SlicerParameterName or None), from the .ui XML."""
    widgets = {}
    for widget in ET.parse(UI_FILE).getroot().iter("widget"):
        param = None
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                param = prop.findtext("string")
        widgets[widget.get("name")] = (widget.get("class"), param)
    return widgets


def test_every_widget_the_code_uses_exists_in_the_ui():
    used = ui_names_used_in_code()
    assert len(used) > 20
    missing = used - set(ui_widgets())
    assert not missing, f"VoxCause.py uses widgets the .ui lacks: {sorted(missing)}"


def test_every_slicer_parameter_name_is_a_field_with_a_widget_that_can_bind_it():
    fields = parameter_fields()
    bound = {}
    for name, (cls, param) in ui_widgets().items():
        if param is None:
            continue
        assert param in fields, f"{name} binds SlicerParameterName={param!r}, not a parameter node field"
        assert cls in BINDINGS[fields[param]], f"{name} ({cls}) cannot bind a {fields[param]}"
        assert param not in bound, f"{param} is bound twice ({bound.get(param)} and {name})"
        bound[param] = name
    assert set(fields) - set(bound) == MANUAL_FIELDS


def test_every_node_combo_box_gets_the_scene():
    root = ET.parse(UI_FILE).getroot()
    receivers = {
        c.findtext("receiver") for c in root.iter("connection") if c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"
    }
    combos = {name for name, (cls, _) in ui_widgets().items() if cls == "qMRMLNodeComboBox"}
    assert combos and combos == receivers
    declared = {c.findtext("class") for c in root.iter("customwidget")}
    used = {cls for cls, _ in ui_widgets().values()}
    assert {c for c in used if c.startswith(("q", "ctk"))} <= declared


def test_ui_loads_in_qt_offscreen_with_every_used_widget():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    pytest.importorskip("PySide6.QtUiTools")
    from PySide6.QtCore import QFile
    from PySide6.QtUiTools import QUiLoader
    from PySide6.QtWidgets import QApplication, QWidget

    app = QApplication.instance() or QApplication([])
    loader = QUiLoader()
    file = QFile(str(UI_FILE))
    assert file.open(QFile.ReadOnly)
    widget = loader.load(file)
    file.close()
    assert widget is not None, loader.errorString()
    names = {child.objectName() for child in widget.findChildren(QWidget)}
    assert ui_names_used_in_code() <= names
    params = {child.property("SlicerParameterName") for child in widget.findChildren(QWidget)} - {None}
    assert params <= set(parameter_fields())
    assert widget.findChild(QWidget, "applyButton").text() == "Apply"
    from VoxCauseLib.command import MAX_ITERATIONS

    spin = widget.findChild(QWidget, "iterationsSpinBox")  # 0 = the core's default ("Default (10)")
    assert (spin.minimum(), spin.maximum(), spin.specialValueText()) == (0, MAX_ITERATIONS, "Default")
    assert app.platformName() == os.environ["QT_QPA_PLATFORM"]
    widget.deleteLater()


def _cmake_list(text: str, variable: str) -> list[str]:
    block = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert block, variable
    return [line.strip().replace("${MODULE_NAME}", "VoxCause") for line in block.group(1).split() if line.strip()]


def test_every_file_in_the_cmake_lists_exists_and_every_module_file_is_listed():
    text = (MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8")
    scripts = _cmake_list(text, "MODULE_PYTHON_SCRIPTS")
    resources = _cmake_list(text, "MODULE_PYTHON_RESOURCES")
    for entry in scripts + resources:
        assert (MODULE_DIR / entry).is_file(), f"CMakeLists.txt lists a missing file: {entry}"
    on_disk = {str(p.relative_to(MODULE_DIR)) for p in (MODULE_DIR / "VoxCauseLib").glob("*.py")} | {"VoxCause.py"}
    assert on_disk == set(scripts)
    resource_files = {str(p.relative_to(MODULE_DIR)) for p in (MODULE_DIR / "Resources").rglob("*") if p.is_file()}
    assert resource_files == set(resources)
    assert "slicerMacroBuildScriptedModule" in text and "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in text


def test_top_level_extension_metadata_and_index_entry():
    text = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    for key in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS"):
        assert re.search(rf'set\(EXTENSION_{key} "[^"]+"\)', text), key
    assert "add_subdirectory(slicer_extension)" in text
    assert "project(VoxCause)" in text
    entry = json.loads((MODULE_DIR / "VoxCause.json").read_text(encoding="utf-8"))
    assert entry["$schema"].endswith("slicer-extension-catalog-entry-schema-v1.0.1.json#")
    assert entry["category"] in text and entry["scm_url"].startswith("https://")
    assert entry["build_dependencies"] == ["PyTorch"] and 'EXTENSION_DEPENDS "PyTorch"' in text


def test_icon_is_a_128_pixel_png():
    data = (MODULE_DIR / "Resources" / "Icons" / "VoxCause.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (128, 128)


def test_module_file_compiles_and_keeps_the_template_roles():
    tree = _module_tree()
    classes = {node.name: [ast.unparse(b) for b in node.bases] for node in tree.body if isinstance(node, ast.ClassDef)}
    assert classes["VoxCause"] == ["ScriptedLoadableModule"]
    assert classes["VoxCauseWidget"] == ["ScriptedLoadableModuleWidget", "VTKObservationMixin"]
    assert classes["VoxCauseLogic"] == ["ScriptedLoadableModuleLogic"]
    assert classes["VoxCauseTest"] == ["ScriptedLoadableModuleTest"]
    logic = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "VoxCauseLogic")
    assert "Widget" not in ast.unparse(logic)  # the Logic never reaches into the panel
    compile(MODULE_FILE.read_text(encoding="utf-8"), str(MODULE_FILE), "exec")


def test_requirements_file_reads():
    from VoxCauseLib.deps import read_requirements, requirement_name

    names = [requirement_name(r) for r in read_requirements(MODULE_DIR / "Resources" / "requirements.txt")]
    assert names[0] == "torch" and "voxcause" in names


def test_the_docs_picture_of_the_panel_is_drawn_from_the_ui_file(tmp_path):
    """scripts/render_slicer_panel.py lays out VoxCause.ui offscreen with the lists the module fills, and shows a
    finished run's results as the panel does (sizes in image voxels and ml)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    pytest.importorskip("PySide6.QtUiTools")
    import importlib.util

    script = MODULE_DIR.parent / "scripts" / "render_slicer_panel.py"
    spec = importlib.util.spec_from_file_location("render_slicer_panel", script)
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({
        "method": "rex", "certificate": {"verdict": "pass", "reason": "r"},
        "sufficient": {"voxels": 7, "fraction": 0.0001, "score": 0.51},
        "mask_sizes": {"sufficient": {"image_voxels": 56, "ml": 0.448}}}))
    panel = render.load_panel(run)
    from PySide6.QtWidgets import QComboBox, QWidget

    occlusions = panel.findChild(QComboBox, "occlusionSelector")
    assert "Body's voxels shuffled (normalising networks)" in [occlusions.itemText(i) for i in range(occlusions.count())]
    assert "56 image voxels (0.45 ml)" in panel.findChild(QWidget, "resultsTextEdit").toPlainText()
    assert render.main(["--summary", str(run), "--out", str(tmp_path / "panel.png")]) == 0
    assert (tmp_path / "panel.png").stat().st_size > 10_000
