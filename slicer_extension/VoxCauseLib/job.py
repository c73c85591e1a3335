"""One explanation run from the panel: inputs out of the scene, the process, results back into the scene.

`ExplainJob` is what the module's Logic drives. It holds no GUI: the Logic gives it the scene, one
`command.ExplainRequest` (the panel's choices, nodes included) and a callback that receives events
(`StateChange`, `Progress`, `Log`, `Finished`); the widget turns those into the button text, the progress bar
and the messages. The GUI calls `poll()` from a Qt timer;
scripts and tests call `wait()`.

Guarantees: bad input is reported before any process starts; a failed, cancelled or rejected run leaves no
node in the scene and removes the folders it created; results are only imported after the process exits 0.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from . import display, mrml
from .command import ExplainRequest, RequestError, build_command, build_report_command
from .process import ProcessEventKind, ProcessRunner, child_environment
from .progress import Done, Failed, Log, Progress
from .state import Outcome, RunMachine, RunState, StateChange
from .summary import summary_text


@dataclasses.dataclass(frozen=True)
class Finished:
    """The run is over. `nodes` holds what was added (empty unless SUCCEEDED); `text` is the results text."""

    outcome: Outcome
    message: str
    out_dir: Path | None = None
    nodes: mrml.ResultNodes | None = None
    text: str = ""


JobEvent = StateChange | Progress | Log | Finished


class ExplainJob:
    """Run one explanation for the volumes in `scene` and show the result there.

    Args:
        scene: the MRML scene holding the inputs; results are added to it.
        request: the user's choices, with volume nodes as `images` and (segmentation node, segment id) as
            `region` (see `command.ExplainRequest`); checked before anything is exported.
        launcher: program prefix for `command.build_command` (PythonSlicer inside Slicer).
        on_event: called with every `JobEvent`.
        mrml_module: the MRML module (`slicer`); default: imported when needed.
    """

    def __init__(
        self,
        scene: Any,
        request: ExplainRequest,
        *,
        launcher: Sequence[str] | None = None,
        on_event: Callable[[JobEvent], None] | None = None,
        mrml_module: ModuleType | None = None,
    ) -> None:
        self.scene = scene
        self.request = request
        self.launcher = launcher
        self._step = "explain"
        self._fraction = 0.0
        self._mrml = mrml_module
        self._on_event = on_event
        self.out_dir: Path | None = None
        self.command: list[str] = []
        self.log: list[str] = []
        self.result: Finished | None = None
        self._work: Path | None = None
        self._error = ""
        self._runner: ProcessRunner | None = None
        self.machine = RunMachine(listener=self._emit)

    # -- events -------------------------------------------------------------------------------------------
    def _emit(self, event: JobEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    @property
    def state(self) -> RunState:
        """Where the run is (IDLE before start and after the end)."""
        return self.machine.state

    # -- start --------------------------------------------------------------------------------------------
    def start(self) -> bool:
        """Check the input, write it to a temp folder and start the process.

        Returns False (after a `Finished` event with `Outcome.BAD_INPUT` and a message naming the fix) when
        the input cannot run; nothing is added to the scene then.
        """
        try:
            self.command = build_command(self._export(), launcher=self.launcher)
        except (RequestError, ValueError) as exc:
            self._cleanup(failed=True)
            return self._reject(str(exc))
        self._runner = ProcessRunner(self.command, env=child_environment(self.request.device))
        self.machine.start()
        try:
            self._runner.start()
        except OSError as exc:
            self.machine.finish(
                1, message=f"Cannot start the run: {exc}. Check that Python and voxcause are installed."
            )
            self._finish_failed(self.machine.message)
            return False
        return True

    def _reject(self, message: str) -> bool:
        self.machine.reject(message)
        self.result = Finished(Outcome.BAD_INPUT, message)
        self._emit(self.result)
        return False

    def _export(self) -> ExplainRequest:
        """Check the request, export the inputs and return its file-level copy; raises RequestError/ValueError."""
        request = self.request
        request.validate()
        self._work = Path(tempfile.mkdtemp(prefix="voxcause-input-"))
        if request.out_dir is not None:
            request.out_dir.mkdir(parents=True, exist_ok=True)
            self.out_dir = request.out_dir
        else:
            self.out_dir = Path(tempfile.mkdtemp(prefix="voxcause-run-"))
        images = [
            mrml.export_volume(v, self._work / f"input{i}.nrrd", mrml=self._mrml) for i, v in enumerate(request.images)
        ]
        region_path = None
        if request.region is not None:
            segmentation, segment_id = request.region
            region_path = mrml.export_segment_mask(
                self.scene, segmentation, segment_id, request.images[0], self._work / "region.nrrd", mrml=self._mrml
            )
        return request.exported(images=images, region=region_path, out_dir=self.out_dir)

    # -- running ------------------------------------------------------------------------------------------
    def poll(self) -> bool:
        """Hand out what happened since the last call; returns True while the run is still going."""
        if self._runner is None or not self.machine.busy:
            return False
        for item in self._runner.poll():
            if item.kind is ProcessEventKind.EXITED:
                self._exited(item.returncode)
                return self.machine.busy  # still busy when the report step has just started
            event = item.event
            if isinstance(event, Failed):
                self._error = event.panel_message()
                self.log.append(event.message)
            elif isinstance(event, Log):
                self.log.append(event.text)
                self._emit(event)
            elif isinstance(event, Progress):
                # The bar never moves back (a late stage may report a lower overall fraction); the text follows.
                self._fraction = max(self._fraction, event.fraction)
                self._emit(Progress(stage=event.stage, fraction=self._fraction))
            elif isinstance(event, Done):
                pass  # the exit code decides; Done only confirms the folder
        return True

    def wait(self, timeout: float = 600.0, *, interval: float = 0.05) -> Finished:
        """Poll until the run is over (for scripts and tests; the GUI uses a timer instead)."""
        import time

        deadline = time.monotonic() + timeout
        while self.poll():
            if time.monotonic() > deadline:
                self.cancel()
                deadline = time.monotonic() + 30
            time.sleep(interval)
        assert self.result is not None
        return self.result

    def cancel(self) -> None:
        """Stop the run: the process tree is killed; the end is reported by the next `poll()`."""
        if self.machine.cancel() and self._runner is not None:
            self._runner.cancel()

    def _exited(self, returncode: int | None) -> None:
        cancelled = self.machine.state is RunState.CANCELLING
        message = self._error
        if self._step == "report":
            if returncode != 0 and not cancelled:
                self.log.append(f"The report step failed (exit code {returncode}); the results are shown without it.")
            returncode = 0  # the explanation itself succeeded
        elif self._wants_report(cancelled, returncode) and self._start_report():
            return
        if not cancelled and returncode == 0:
            try:
                nodes = self._import()
            except Exception as exc:  # noqa: BLE001 - any import failure is shown, never raised into Qt
                self.machine.finish(1, message=f"The results could not be loaded: {exc}")
                self._finish_failed(self.machine.message)
                return
            outcome = self.machine.finish(0)
            self._cleanup(failed=False)
            text = summary_text(self.out_dir) if self.out_dir is not None else ""
            self.result = Finished(outcome, "Done.", self.out_dir, nodes, text)
            self._emit(self.result)
            return
        if not cancelled and not message:
            tail = "; ".join(self.log[-3:])
            message = f"The run failed (exit code {returncode}). {tail}".strip()
        outcome = self.machine.finish(returncode, message=message)
        self._finish_failed(self.machine.message, outcome)

    def _wants_report(self, cancelled: bool, returncode: int | None) -> bool:
        return not cancelled and returncode == 0 and self.request.report and not self.request.method.is_counterfactual

    def _start_report(self) -> bool:
        """Chain `voxcause report DIR`; False when it cannot start (the results are shown anyway)."""
        assert self.out_dir is not None
        self._step = "report"
        self._emit(Progress(stage="writing the report", fraction=1.0))
        self._runner = ProcessRunner(
            build_report_command(self.out_dir, launcher=self.launcher), env=child_environment(self.request.device)
        )
        try:
            self._runner.start()
        except OSError as exc:
            self.log.append(f"Cannot start the report step: {exc}")
            return False
        return True

    def _import(self) -> mrml.ResultNodes:
        assert self.out_dir is not None
        request = self.request
        background = request.images[0]
        name = background.GetName() if background is not None else "voxcause"
        shown = request.model_segmentation
        if shown is None and request.region is not None:
            shown = request.region[0]
        nodes = mrml.import_results(
            self.scene,
            self.out_dir,
            name=name,
            background=background,
            model_segmentation=shown,
            threshold=request.threshold,
            opacity=request.opacity,
            mrml=self._mrml,
        )
        try:  # files for opening the results without the module: useful, never a reason to fail the run
            display.write_color_table(self.out_dir / display.HEAT_TABLE_FILE)
            if request.write_scene_file:
                from .bundle import write_scene_mrb

                write_scene_mrb(self.out_dir, images=[self._work / "input0.nrrd"] if self._work else None)
        except Exception as exc:  # noqa: BLE001
            self.log.append(f"Could not write the colour table / scene file: {exc}")
        return nodes

    def _finish_failed(self, message: str, outcome: Outcome = Outcome.FAILED) -> None:
        self._cleanup(failed=True)
        self.result = Finished(outcome, message, None, None, "")
        self._emit(self.result)

    def _cleanup(self, *, failed: bool) -> None:
        """Remove the input copies always, and the run folder after a failure if this job created it."""
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
        if failed and self.out_dir is not None and self.request.out_dir is None:
            shutil.rmtree(self.out_dir, ignore_errors=True)
