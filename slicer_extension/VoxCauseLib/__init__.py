"""Plain-Python half of the VoxCause Slicer module.

Everything here runs without the Slicer GUI so that pytest can check it: the `voxcause` command line that a
run starts (`command`), the progress lines it prints (`progress`), the Apply/Cancel state machine (`state`),
the process that does the work (`process`), how results are shown (`display`), the models on offer and what
their cards say (`models`), the core's defaults (`defaults`), the text of the results area (`summary`), and the
MRML side (`mrml`, `job`, `bundle`, `render`), which needs only plain MRML (inside Slicer, or from the
`slicer-core` wheel) and never the GUI.

Nothing in this package imports Qt or the module's widget: the widget passes callbacks in, and events come
back as enum-tagged dataclasses.
"""

from .command import ExplainRequest, RequestError, build_command
from .options import Device, Method, Occlusion
from .progress import Done, Failed, Log, Progress, parse_line
from .state import Outcome, RunMachine, RunState

__all__ = [
    "Device",
    "Done",
    "ExplainRequest",
    "Failed",
    "Log",
    "Method",
    "Occlusion",
    "Outcome",
    "Progress",
    "RequestError",
    "RunMachine",
    "RunState",
    "build_command",
    "parse_line",
]
