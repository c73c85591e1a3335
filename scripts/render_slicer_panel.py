"""Draw the VoxCause panel for the docs: `slicer_extension/Resources/UI/VoxCause.ui`, laid out by Qt, offscreen.

    QT_QPA_PLATFORM=offscreen .venv-slicer/bin/python scripts/render_slicer_panel.py \
        [--summary voxcause-demo/classifier] [--out docs/images/slicer_panel.png]

Why a drawing and not a screenshot: Slicer's GUI does not run on this project's machines (no display, no Slicer
application). Qt's own `QUiLoader` lays out the very `.ui` file Slicer loads; the few Slicer/CTK widgets it uses
(`ctkCollapsibleButton`, `qMRMLNodeComboBox`, `ctkSliderWidget`, `ctkPathLineEdit`) are not in PySide6, so they are
drawn as the plain Qt widgets they look like (a titled group, a combo box naming the node, a slider with a spin
box, a line edit), and the lists are filled from the same sources the module uses (`VoxCauseLib.models` for the
sample models, the `VoxCauseLib.options` enums for method, canvas and device, `VoxCauseLib.display` for the
sliders' defaults, `VoxCauseLib.summary` for the results text of a finished run's folder). The picture says so in
its caption in the README.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UI_FILE = ROOT / "slicer_extension" / "Resources" / "UI" / "VoxCause.ui"
sys.path.insert(0, str(ROOT / "slicer_extension"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Property, QFile, Qt  # noqa: E402
from PySide6.QtUiTools import QUiLoader  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSlider,
    QWidget,
)
from VoxCauseLib.display import DEFAULT_OPACITY, DEFAULT_THRESHOLD  # noqa: E402
from VoxCauseLib.models import list_sample_models  # noqa: E402
from VoxCauseLib.options import Device, Method, Occlusion  # noqa: E402
from VoxCauseLib.summary import summary_text  # noqa: E402

#: What each node combo box shows, as a loaded sample case would (the demo's glioma, four MR channels).
NODE_NAMES = {
    "inputVolumeSelector": "case_T1",
    "inputVolume2Selector": "case_T1c",
    "inputVolume3Selector": "case_T2",
    "inputVolume4Selector": "case_FLAIR",
    "regionSegmentationSelector": "None",
    "modelSegmentationSelector": "None",
}


class ctkCollapsibleButton(QGroupBox):  # noqa: N801 - the class name the .ui file names
    """Slicer's collapsible section, drawn as a titled group (its ``text`` is the title)."""

    def _text(self) -> str:
        return self.title()

    def _set_text(self, value: str) -> None:
        self.setTitle(value)

    text = Property(str, _text, _set_text)


class qMRMLNodeComboBox(QComboBox):  # noqa: N801
    """Slicer's node picker, drawn as a combo box showing the node a loaded case would offer."""


class qMRMLWidget(QWidget):  # noqa: N801
    """The panel's root widget."""


class ctkPathLineEdit(QWidget):  # noqa: N801
    """A path field with its browse button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLineEdit(self))
        layout.addWidget(QPushButton("…", self))


class ctkSliderWidget(QWidget):  # noqa: N801
    """A slider with a spin box beside it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.slider, self.box = QSlider(Qt.Horizontal, self), QDoubleSpinBox(self)
        layout.addWidget(self.slider)
        layout.addWidget(self.box)

    def set_value(self, value: float) -> None:
        self.box.setValue(value)
        self.slider.setValue(round(self.slider.maximum() * value))


def load_panel(results: Path | None = None) -> QWidget:
    """The panel as Qt lays it out, its lists filled as the module fills them for the 3D sample classifier, and
    the results text of ``results`` (a finished run's folder) when given."""
    loader = QUiLoader()
    for widget in (ctkCollapsibleButton, qMRMLNodeComboBox, qMRMLWidget, ctkPathLineEdit, ctkSliderWidget):
        loader.registerCustomWidget(widget)
    file = QFile(str(UI_FILE))
    if not file.open(QFile.ReadOnly):
        raise SystemExit(f"cannot read {UI_FILE}")
    panel = loader.load(file)
    file.close()
    if panel is None:
        raise SystemExit(loader.errorString())

    models = list_sample_models()
    chosen = next((entry for entry in models if entry.task == "classification" and entry.spatial_dims == 3),
                  models[0] if models else None)
    combo = panel.findChild(QComboBox, "modelSelector")
    combo.addItems([entry.name for entry in models] + ["Model file or MONAI bundle…"])
    if chosen is not None:
        combo.setCurrentText(chosen.name)
        channels = list(chosen.channels)
        for index, name in enumerate(("inputVolumeLabel", "inputVolume2Label", "inputVolume3Label", "inputVolume4Label")):
            label = panel.findChild(QWidget, name)
            if index < len(channels):
                label.setText(channels[index] + ":")
            else:
                label.setVisible(False)
                panel.findChild(QWidget, name.replace("Label", "Selector")).setVisible(False)
        panel.findChild(QWidget, "modelInfoLabel").setText(
            f"{chosen.spatial_dims or 3}D {chosen.task} model; classes: {', '.join(chosen.labels)}")
        panel.findChild(QComboBox, "targetSelector").addItems(["(predicted class)", *chosen.labels])
    for name in ("modelPathLabel", "modelPathLineEdit", "progressBar"):
        panel.findChild(QWidget, name).setVisible(False)
    panel.findChild(QWidget, "applyButton").setEnabled(True)  # the module enables it once inputs are chosen
    panel.findChild(QWidget, "thresholdSlider").set_value(DEFAULT_THRESHOLD)
    panel.findChild(QWidget, "opacitySlider").set_value(DEFAULT_OPACITY)
    if results is not None:
        panel.findChild(QWidget, "resultsTextEdit").setPlainText(summary_text(results))
    for name, node in NODE_NAMES.items():
        panel.findChild(QComboBox, name).addItem(node)
    panel.findChild(QComboBox, "methodSelector").addItems([method.label() for method in Method])
    panel.findChild(QComboBox, "occlusionSelector").addItems([occlusion.label() for occlusion in Occlusion])
    panel.findChild(QComboBox, "deviceSelector").addItems([device.label() for device in Device])
    panel.findChild(QWidget, "iterationsSpinBox").setSpecialValueText("Default (10)")
    return panel


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, help="a finished run's folder (summary.json) to show as results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "slicer_panel.png")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication([])
    panel = load_panel(args.summary)
    panel.resize(480, panel.sizeHint().height())
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    if not panel.grab().save(str(out)):
        raise SystemExit(f"could not write {out}")
    print(out)
    app.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
