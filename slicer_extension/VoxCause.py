"""VoxCause: explain a medical-imaging model's decision inside 3D Slicer.

Roles as in Slicer's module template: `VoxCause` (module description), `VoxCauseParameterNode` (typed
parameters bound to the .ui), `VoxCauseWidget` (the panel), `VoxCauseLogic` (runs without the GUI, takes nodes
and plain values), `VoxCauseTest` (in-Slicer test). The work itself runs in a separate process (PythonSlicer
running the `voxcause` core); everything that does not need Slicer lives in the `VoxCauseLib` package, which
is tested with pytest outside Slicer.
"""

import logging
import os
import shutil
import sys
import tempfile
from typing import Annotated

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin
from VoxCauseLib import display, mrml
from VoxCauseLib.command import LAUNCHER, MAX_ITERATIONS, ExplainRequest
from VoxCauseLib.defaults import CoreDefaultsReader
from VoxCauseLib.deps import install_arguments, missing_requirements
from VoxCauseLib.job import ExplainJob, Finished
from VoxCauseLib.models import list_sample_models, read_model
from VoxCauseLib.options import DEFAULT_METHOD, Device, Method, Occlusion
from VoxCauseLib.progress import Log, Progress, percent
from VoxCauseLib.state import Outcome, RunMachine, StateChange

#: Text of the model combo box entry that switches to a model file / bundle folder of the user's.
MODEL_FROM_FILE = "Model file or MONAI bundle…"
#: Text of the target combo box entry that explains the predicted class.
PREDICTED_TARGET = "(predicted class)"
#: How many input selectors the panel has (e.g. T1, T1c, T2, FLAIR); the model card says how many are used.
MAX_CHANNELS = 4


#
# VoxCause
#


class VoxCause(ScriptedLoadableModule):
    """Module description shown in Slicer's module list and help."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("VoxCause")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["voxcause contributors"]
        self.parent.helpText = _(
            "Explain what drives a classifier's or segmenter's decision: causal responsibility maps, saliency "
            "(Grad-CAM family, occlusion), dual-evidence fusion and counterfactuals, shown as overlays. The work "
            "runs in a separate process with progress and Cancel; the GUI stays responsive."
        )
        self.parent.acknowledgementText = _(
            "Built on the voxcause library, MONAI and PyTorch, in the conventions of Slicer's module template."
        )


#
# VoxCauseParameterNode
#


@parameterNodeWrapper
class VoxCauseParameterNode:
    """Everything the panel edits. Fields bound in the .ui carry the same name in its `SlicerParameterName`.

    modelName, modelPath, target and regionSegmentId are synced by the widget itself (their combo boxes are
    filled at run time, which the automatic binding does not support).

    iterations 0 and occlusion DEFAULT mean "the core's default": no flag is sent, so the run gets whatever the
    installed voxcause declares (`voxcause methods --json`); the panel only names it ("Default (10)" today).
    """

    inputVolume: vtkMRMLScalarVolumeNode
    inputVolume2: vtkMRMLScalarVolumeNode
    inputVolume3: vtkMRMLScalarVolumeNode
    inputVolume4: vtkMRMLScalarVolumeNode
    modelName: str = ""
    modelPath: str = ""
    target: str = ""
    method: Method = DEFAULT_METHOD
    regionSegmentation: vtkMRMLSegmentationNode
    regionSegmentId: str = ""
    modelSegmentation: vtkMRMLSegmentationNode
    iterations: Annotated[int, WithinRange(0, MAX_ITERATIONS)] = 0
    seed: Annotated[int, WithinRange(0, 1000000)] = 0
    occlusion: Occlusion = Occlusion.DEFAULT
    device: Device = Device.CPU
    writeSceneFile: bool = True
    writeReport: bool = True
    threshold: Annotated[float, WithinRange(0.0, 0.99)] = display.DEFAULT_THRESHOLD
    opacity: Annotated[float, WithinRange(0.0, 1.0)] = display.DEFAULT_OPACITY
    mapVolume: vtkMRMLScalarVolumeNode
    explanationSegmentation: vtkMRMLSegmentationNode
    resultsFolder: str = ""


#
# VoxCauseWidget
#


class VoxCauseWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: reads the user's choices, asks the Logic to run, shows the events the Logic sends back."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._models = []
        self._modelEntry = None
        self._updatingGui = False
        self._defaultsTimer = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/VoxCause.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = VoxCauseLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.modelSelector.connect("currentIndexChanged(int)", self.onModelSelected)
        self.ui.modelPathLineEdit.connect("currentPathChanged(QString)", self.onModelPathChanged)
        self.ui.targetSelector.connect("currentIndexChanged(int)", self.onTargetSelected)
        self.ui.regionSegmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onRegionSegmentationChanged)
        self.ui.regionSegmentSelector.connect("currentIndexChanged(int)", self.onRegionSegmentSelected)
        self.ui.jumpToPeakButton.connect("clicked(bool)", self.onJumpToPeak)
        self.ui.openResultsFolderButton.connect("clicked(bool)", self.onOpenResultsFolder)
        self.ui.progressBar.setVisible(False)

        self.refreshModels()
        self.initializeParameterNode()
        self.startReadingCoreDefaults()

    # -- the core's defaults ------------------------------------------------------------------------------
    def startReadingCoreDefaults(self) -> None:
        """Ask the installed voxcause for its defaults in the background; the panel names them when it answers."""
        if not self.logic.startReadingCoreDefaults():
            return
        self._defaultsTimer = qt.QTimer()
        self._defaultsTimer.setInterval(500)
        self._defaultsTimer.connect("timeout()", self.onCoreDefaultsPoll)
        self._defaultsTimer.start()

    def onCoreDefaultsPoll(self) -> None:
        if self.logic.pollCoreDefaults():
            return
        self._defaultsTimer.stop()
        self._defaultsTimer = None
        self.showCoreDefaults()

    def showCoreDefaults(self) -> None:
        """Name the core's defaults in the iterations box and the occlusion tooltip."""
        defaults = self.logic.coreDefaults
        if defaults is None:
            self.ui.occlusionSelector.toolTip = _("'Core default' uses the installed voxcause's default.")
            return
        self.ui.iterationsSpinBox.specialValueText = defaults.iterations_text()
        self.ui.occlusionSelector.toolTip = _("'Core default' is {value} in voxcause {version}.").format(
            value=defaults.default(Method.REX, "occlusion"), version=defaults.version
        )

    def cleanup(self) -> None:
        """Called when the application closes and the module widget is destroyed: stop a running job."""
        if self._defaultsTimer is not None:
            self._defaultsTimer.stop()
        if self.logic is not None:
            self.logic.cancel()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        if self.logic is not None:
            self.logic.cancel()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode:
                self._parameterNode.inputVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode: VoxCauseParameterNode | None) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
            self.restoreManualWidgets()
            self.onParameterNodeModified()

    # -- models -------------------------------------------------------------------------------------------
    def refreshModels(self) -> None:
        """Fill the model combo box: the bundled sample models, then the entry for a file of the user's."""
        self._models = list_sample_models()
        self._updatingGui = True
        try:
            self.ui.modelSelector.clear()
            for entry in self._models:
                self.ui.modelSelector.addItem(entry.name)
                self.ui.modelSelector.setItemData(self.ui.modelSelector.count - 1, entry.description, qt.Qt.ToolTipRole)
            self.ui.modelSelector.addItem(MODEL_FROM_FILE)
        finally:
            self._updatingGui = False

    def currentModelPath(self) -> str:
        """Path of the chosen model card/file/bundle ('' when none)."""
        index = self.ui.modelSelector.currentIndex
        if 0 <= index < len(self._models):
            return str(self._models[index].path)
        return self.ui.modelPathLineEdit.currentPath

    def restoreManualWidgets(self) -> None:
        """Put the parameter node's manually synced values back into their widgets."""
        node = self._parameterNode
        self._updatingGui = True
        try:
            names = [entry.name for entry in self._models]
            if node.modelName in names:
                self.ui.modelSelector.setCurrentIndex(names.index(node.modelName))
            elif node.modelPath:
                self.ui.modelSelector.setCurrentIndex(len(names))
                self.ui.modelPathLineEdit.currentPath = node.modelPath
        finally:
            self._updatingGui = False
        self.onModelSelected()

    def onModelSelected(self, index=None) -> None:
        if self._parameterNode is None:
            return
        fromFile = self.ui.modelSelector.currentIndex >= len(self._models)
        self.ui.modelPathLineEdit.setVisible(fromFile)
        self.ui.modelPathLabel.setVisible(fromFile)
        if not self._updatingGui:
            index = self.ui.modelSelector.currentIndex
            self._parameterNode.modelName = "" if fromFile else self._models[index].name
            self._parameterNode.modelPath = self.currentModelPath()
        self.updateModelInfo()

    def onModelPathChanged(self, path) -> None:
        if self._parameterNode is not None and not self._updatingGui:
            self._parameterNode.modelPath = self.currentModelPath()
        self.updateModelInfo()

    def updateModelInfo(self) -> None:
        """Show the model's task/labels, name the input channels, and fill the target list."""
        path = self.currentModelPath()
        entry = None
        if path and os.path.exists(path):
            try:
                entry = read_model(path)
            except ValueError as exc:
                self.ui.modelInfoLabel.text = str(exc)
        self._modelEntry = entry
        channels = list(entry.channels) if entry else []
        count = min(MAX_CHANNELS, self.channelCount())
        selectors = self.channelSelectors()
        for i, (label, selector) in enumerate(selectors):
            visible = i < count
            label.setVisible(visible)
            selector.setVisible(visible)
            label.text = (channels[i] + ":") if i < len(channels) else (_("Input volume:") if i == 0 else "")
        if entry:
            self.ui.modelInfoLabel.text = _("{dims}{task} model; classes: {labels}").format(
                dims=f"{entry.spatial_dims}D " if entry.spatial_dims else "",
                task=entry.task or "?",
                labels=", ".join(entry.labels) or "?",
            )
        elif not path:
            self.ui.modelInfoLabel.text = _("No model chosen.")
        self._updatingGui = True
        try:
            self.ui.targetSelector.clear()
            self.ui.targetSelector.addItem(PREDICTED_TARGET)
            for label in entry.labels if entry else ():
                self.ui.targetSelector.addItem(label)
            if self._parameterNode and self._parameterNode.target:
                found = self.ui.targetSelector.findText(self._parameterNode.target)
                self.ui.targetSelector.setCurrentIndex(max(0, found))
        finally:
            self._updatingGui = False

    def channelCount(self) -> int:
        """Input volumes the chosen model takes: one per channel its card (or bundle) lists; 1 for a bare file."""
        return self._modelEntry.channel_count if self._modelEntry is not None else 1

    def channelSelectors(self):
        return [
            (self.ui.inputVolumeLabel, self.ui.inputVolumeSelector),
            (self.ui.inputVolume2Label, self.ui.inputVolume2Selector),
            (self.ui.inputVolume3Label, self.ui.inputVolume3Selector),
            (self.ui.inputVolume4Label, self.ui.inputVolume4Selector),
        ]

    def onTargetSelected(self, index) -> None:
        if self._parameterNode is not None and not self._updatingGui:
            text = self.ui.targetSelector.currentText
            self._parameterNode.target = "" if text == PREDICTED_TARGET else text

    # -- region -------------------------------------------------------------------------------------------
    def onRegionSegmentationChanged(self, node) -> None:
        self.ui.regionSegmentSelector.clear()
        if node is None:
            return
        segmentation = node.GetSegmentation()
        for i in range(segmentation.GetNumberOfSegments()):
            self.ui.regionSegmentSelector.addItem(
                segmentation.GetNthSegment(i).GetName(), segmentation.GetNthSegmentID(i)
            )
        if self._parameterNode and self._parameterNode.regionSegmentId:
            found = self.ui.regionSegmentSelector.findData(self._parameterNode.regionSegmentId)
            self.ui.regionSegmentSelector.setCurrentIndex(max(0, found))

    def onRegionSegmentSelected(self, index) -> None:
        if self._parameterNode is not None and index >= 0:
            self._parameterNode.regionSegmentId = self.ui.regionSegmentSelector.itemData(index) or ""

    # -- parameter changes --------------------------------------------------------------------------------
    def onParameterNodeModified(self, caller=None, event=None) -> None:
        node = self._parameterNode
        if node is None:
            return
        method = node.method
        self.ui.iterationsSpinBox.setEnabled(method.sends("iterations"))
        self.ui.occlusionSelector.setEnabled(method.sends("occlusion"))
        self.ui.regionLabel.text = _("Region (required):") if method.is_counterfactual else _("Region (optional):")
        busy = self.logic.busy
        if not busy:
            ready = node.inputVolume is not None and bool(self.currentModelPath())
            self.ui.applyButton.enabled = ready
            self.ui.applyButton.toolTip = (
                _("Run the explanation.") if ready else _("Select an input volume and a model.")
            )
        self.ui.deviceStatusLabel.text = self.logic.deviceNote(node.device)
        self.logic.updateDisplay(node.mapVolume, threshold=node.threshold, opacity=node.opacity)
        self.ui.jumpToPeakButton.enabled = node.mapVolume is not None
        self.ui.openResultsFolderButton.enabled = bool(node.resultsFolder)

    # -- run / cancel -------------------------------------------------------------------------------------
    def onApplyButton(self) -> None:
        if self.logic.busy:
            self.logic.cancel()
            return
        if not self.ensureDependencies():
            return
        self.ui.logTextEdit.clear()
        self.ui.statusLabel.text = ""
        with slicer.util.tryWithErrorDisplay(_("Failed to start the explanation."), waitCursor=True):
            self.logic.run(self.currentRequest(), onEvent=self.onJobEvent)

    def currentRequest(self) -> ExplainRequest:
        """The panel's choices as the one request the Logic, the job and the command line share."""
        node = self._parameterNode
        selected = [node.inputVolume, node.inputVolume2, node.inputVolume3, node.inputVolume4]
        count = self.channelCount()
        volumes = (selected + [None] * count)[:count]  # a card with more channels than selectors: reported empty
        region = (
            (node.regionSegmentation, node.regionSegmentId)
            if node.regionSegmentation and node.regionSegmentId
            else None
        )
        return ExplainRequest(
            images=tuple(volumes),
            model=self.currentModelPath(),
            method=node.method,
            target=node.target or None,
            region=region,
            model_segmentation=node.modelSegmentation,
            device=node.device,
            seed=node.seed,
            iterations=node.iterations or None,  # 0: the core's default
            occlusion=node.occlusion,
            threshold=node.threshold,
            opacity=node.opacity,
            write_scene_file=node.writeSceneFile,
            report=node.writeReport,
        )

    def ensureDependencies(self) -> bool:
        """Offer to install what is missing (torch through the PyTorch extension when present)."""
        missing = self.logic.missingDependencies()
        if not missing:
            return True
        if not slicer.util.confirmOkCancelDisplay(
            _(
                "VoxCause needs these Python packages, which are not installed yet:\n\n{packages}\n\n"
                "Install them now? This can take several minutes."
            ).format(packages="\n".join(missing))
        ):
            self.ui.statusLabel.text = _("Not run: the required Python packages are not installed.")
            return False
        with slicer.util.tryWithErrorDisplay(_("Failed to install the packages."), waitCursor=True):
            self.logic.installDependencies()
            if self.logic.coreDefaults is None and self._defaultsTimer is None:
                self.startReadingCoreDefaults()  # voxcause is there now: name its defaults
            return not self.logic.missingDependencies()
        return False

    def onJobEvent(self, event) -> None:
        """Every event from the Logic's run; the only place the panel changes during a run."""
        if isinstance(event, StateChange):
            spec = self.logic.buttonSpec()
            self.ui.applyButton.text = spec.text
            self.ui.applyButton.enabled = spec.enabled
            self.ui.applyButton.toolTip = spec.tooltip
            self.ui.progressBar.setVisible(self.logic.busy)
            if self.logic.busy:
                self.ui.progressBar.value = 0
                self.ui.statusLabel.text = _("Starting…")
        elif isinstance(event, Progress):
            self.ui.progressBar.value = percent(event)
            self.ui.statusLabel.text = event.stage
        elif isinstance(event, Log):
            self.ui.logTextEdit.appendPlainText(event.text)
        elif isinstance(event, Finished):
            self.ui.progressBar.setVisible(False)
            self.ui.statusLabel.text = event.message
            color = "black" if event.outcome is Outcome.SUCCEEDED else "darkred"
            self.ui.statusLabel.setStyleSheet(f"color: {color}")
            if event.outcome is Outcome.SUCCEEDED and event.nodes is not None:
                node = self._parameterNode
                node.mapVolume = event.nodes.map
                node.explanationSegmentation = event.nodes.explanation
                node.resultsFolder = str(event.out_dir or "")
                self.ui.resultsTextEdit.setPlainText(event.text + "\n\n" + _("Results folder: ") + node.resultsFolder)
            self.onParameterNodeModified()

    def onJumpToPeak(self) -> None:
        self.logic.jumpToPeak(self._parameterNode.mapVolume)

    def onOpenResultsFolder(self) -> None:
        folder = self._parameterNode.resultsFolder
        if folder:
            qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(folder))


#
# VoxCauseLogic
#


class VoxCauseLogic(ScriptedLoadableModuleLogic):
    """Runs explanations for nodes of the scene; usable from the Python console without the panel.

    Example (Slicer's Python console):
        from VoxCauseLib.command import ExplainRequest
        logic = slicer.modules.voxcause.widgetRepresentation().self().logic   # or VoxCauseLogic()
        job = logic.run(ExplainRequest(images=(getNode("MRHead"),), model="/path/card.json"), wait=True)
        print(job.result.outcome, job.result.text)
    """

    POLL_INTERVAL_MS = 200

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.job = None
        self._timer = None
        self.coreDefaults = None
        self._defaultsReader = None

    def getParameterNode(self):
        return VoxCauseParameterNode(super().getParameterNode())

    @property
    def busy(self) -> bool:
        """True while a run (or its cancellation) is under way."""
        return self.job is not None and self.job.machine.busy

    def buttonSpec(self):
        """What the Apply/Cancel button shows now."""
        return self.job.machine.button if self.job is not None else RunMachine().button

    @staticmethod
    def launcher() -> list:
        """PythonSlicer (Slicer's Python with Slicer's packages, no GUI) running the voxcause command line."""
        folder = os.path.dirname(sys.executable)
        for name in ("PythonSlicer", "PythonSlicer.exe"):
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                return [candidate, "-c", LAUNCHER]
        found = shutil.which("PythonSlicer")
        return [found or sys.executable, "-c", LAUNCHER]

    def run(self, request, *, onEvent=None, wait=False, timeout=3600.0) -> ExplainJob:
        """Start one run of `request` (a `VoxCauseLib.command.ExplainRequest` holding nodes and plain values);
        with `wait=True` block until it is over (tests, scripts), else poll from a Qt timer.

        Bad input does not raise: the returned job's `result` is a `Finished` with `Outcome.BAD_INPUT` and a
        message naming the fix, and the scene is unchanged.
        """
        if self.busy:
            raise RuntimeError(_("A run is already under way: wait for it or press Cancel."))
        self.job = ExplainJob(slicer.mrmlScene, request, launcher=self.launcher(), on_event=onEvent)
        if not self.job.start():
            return self.job
        logging.info("VoxCause: started %s", " ".join(self.job.command))
        if wait:
            self.job.wait(timeout=timeout)
        else:
            self._timer = qt.QTimer()
            self._timer.setInterval(self.POLL_INTERVAL_MS)
            self._timer.connect("timeout()", self._poll)
            self._timer.start()
        return self.job

    def startReadingCoreDefaults(self) -> bool:
        """Start `voxcause methods --json` in the background; False when it cannot start (not installed yet)."""
        self._defaultsReader = CoreDefaultsReader(self.launcher()).start()
        if self._defaultsReader.error:
            logging.info("VoxCause: %s", self._defaultsReader.error)
            return False
        return True

    def pollCoreDefaults(self) -> bool:
        """True while the core is still answering; then `coreDefaults` holds its defaults (or stays None)."""
        reader = self._defaultsReader
        if reader is None or reader.poll():
            return reader is not None
        self.coreDefaults = reader.result
        if reader.error:
            logging.info("VoxCause: %s", reader.error)
        return False

    def _poll(self) -> None:
        if (self.job is None or not self.job.poll()) and self._timer is not None:
            self._timer.stop()
            self._timer = None

    def cancel(self) -> None:
        """Stop the run; the panel hears about it through the `Finished` event."""
        if self.job is not None:
            self.job.cancel()

    def updateDisplay(self, mapVolume, *, threshold, opacity) -> None:
        """Apply the threshold and opacity sliders to a shown map."""
        if mapVolume is None or mapVolume.GetDisplayNode() is None:
            return
        table = mrml.ensure_color_table(slicer.mrmlScene)
        mrml.style_map(mapVolume, table, threshold=threshold, opacity=opacity)
        mrml.set_opacity(slicer.mrmlScene, opacity)

    def jumpToPeak(self, mapVolume) -> None:
        """Centre the slice views on the map's maximum."""
        if mapVolume is not None:
            mrml.jump_to(slicer.mrmlScene, mrml.peak_ras(mapVolume))

    def deviceNote(self, device) -> str:
        """One line telling where the run will compute, so CPU/GPU is never a surprise."""
        if device is Device.CPU:
            return _("Runs on the CPU (GPUs hidden from the process).")
        return _("Runs on the GPU when CUDA is available in Slicer's PyTorch; otherwise the run stops with a message.")

    def requirementsPath(self) -> str:
        return os.path.join(os.path.dirname(__file__), "Resources", "requirements.txt")

    def missingDependencies(self) -> list:
        """Requirement lines not yet installed in Slicer's Python."""
        return missing_requirements(self.requirementsPath())

    def installDependencies(self) -> None:
        """Install torch (through the PyTorch extension when present) and then the rest (voxcause from the wheel
        the extension ships or the repository the module sits in: `install_arguments`)."""
        missing = self.missingDependencies()
        if any(line.startswith("torch") for line in missing):
            try:
                import PyTorchUtils

                if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False) is None:
                    raise RuntimeError(_("PyTorch was not installed."))
            except ImportError:
                slicer.util.pip_install("torch")
        rest = [line for line in self.missingDependencies() if not line.startswith("torch")]
        if rest:
            slicer.util.pip_install(install_arguments(rest, os.path.dirname(__file__)))


#
# VoxCauseTest
#


class VoxCauseTest(ScriptedLoadableModuleTest):
    """In-Slicer test: bad input, a full run on a sample case, Cancel. Needs voxcause and a sample model.

    CI cannot run this (no Slicer application there); run it from Slicer's Developer mode (Reload and Test).
    """

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_BadInput()
        self.setUp()
        self.test_ExplainSample()
        self.setUp()
        self.test_Cancel()
        self.setUp()
        self.test_CoreDefaults()

    def _sampleCase(self):
        """A sphere 'lesion' volume and the first sample model (one input volume per model channel)."""
        import numpy as np

        models = list_sample_models()
        self.assertTrue(models, "no sample model found: install voxcause with its samples")
        model = models[0]
        z, y, x = np.mgrid[0:48, 0:56, 0:48]
        volumes = []
        for channel in range(model.channel_count):
            array = (100 + 10 * channel + 80 * (((z - 24) ** 2 + (y - 30) ** 2 + (x - 30) ** 2) < 64)).astype("float32")
            node = slicer.util.addVolumeFromArray(array, name=f"sample{channel}")
            node.SetSpacing(2.0, 2.0, 2.0)
            volumes.append(node)
        return volumes, model

    def test_BadInput(self):
        self.delayDisplay("Bad input leaves a message and no node")
        logic = VoxCauseLogic()
        before = slicer.mrmlScene.GetNumberOfNodes()
        job = logic.run(ExplainRequest(images=(None,), model=""))
        self.assertEqual(job.result.outcome, Outcome.BAD_INPUT)
        self.assertIn("input volume", job.result.message)
        volume = slicer.util.addVolumeFromArray(__import__("numpy").zeros((8, 8, 8), "float32"), name="empty")
        before = slicer.mrmlScene.GetNumberOfNodes()
        notAModel = os.path.join(tempfile.mkdtemp(), "not-a-model.pt")
        with open(notAModel, "w") as f:
            f.write("not a model")
        job = logic.run(ExplainRequest(images=(volume,), model=notAModel), wait=True, timeout=300)
        self.assertIn(job.result.outcome, (Outcome.BAD_INPUT, Outcome.FAILED))
        self.assertTrue(job.result.message)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)
        self.delayDisplay("Test passed")

    def test_ExplainSample(self):
        self.delayDisplay("Explain a sample case")
        volumes, model = self._sampleCase()
        events = []
        request = ExplainRequest(images=tuple(volumes), model=str(model.path), method=Method.REX, iterations=2)
        job = VoxCauseLogic().run(request, onEvent=events.append, wait=True, timeout=900)
        self.assertEqual(job.result.outcome, Outcome.SUCCEEDED, job.result.message)
        self.assertTrue(any(isinstance(e, Progress) for e in events))
        nodes = job.result.nodes
        self.assertEqual(nodes.map.GetDisplayNode().GetColorNodeID(), nodes.color_table.GetID())
        self.assertIn("sufficient explanation", mrml.segment_names(nodes.explanation))
        self.assertTrue(job.result.text)
        self.delayDisplay("Test passed")

    def test_Cancel(self):
        self.delayDisplay("Cancel a run")
        volumes, model = self._sampleCase()
        before = slicer.mrmlScene.GetNumberOfNodes()
        logic = VoxCauseLogic()
        job = logic.run(ExplainRequest(images=tuple(volumes), model=str(model.path), method=Method.REX, iterations=200))
        for _step in range(20):
            slicer.app.processEvents()
            qt.QThread.msleep(50)
        logic.cancel()
        result = job.wait(timeout=60)
        self.assertEqual(result.outcome, Outcome.CANCELLED)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)
        self.delayDisplay("Test passed")

    def test_CoreDefaults(self):
        self.delayDisplay("The panel's defaults come from the installed voxcause")
        logic = VoxCauseLogic()
        self.assertTrue(logic.startReadingCoreDefaults())
        for _step in range(1200):
            if not logic.pollCoreDefaults():
                break
            qt.QThread.msleep(100)
        defaults = logic.coreDefaults
        self.assertIsNotNone(defaults, "voxcause methods --json did not answer")
        self.assertIsInstance(defaults.iterations, int)
        self.assertIn("rex", defaults.options)
        node = logic.getParameterNode()
        self.assertEqual(node.iterations, 0)  # "Default (N)": no --iterations is sent
        self.assertEqual(node.occlusion, Occlusion.DEFAULT)  # no --occlusion is sent
        self.delayDisplay("Test passed")
