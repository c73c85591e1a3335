"""How results look: the heat colour table, threshold, opacity, segment colours and the layouts.

These are plain values so that the panel, the `.mrb` writer and the tests share one definition, and a person
opening the results without the module (the `.ctbl` colour table file) sees the same colours.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path

HEAT_TABLE_NAME = "VoxCauseHeat"
HEAT_TABLE_FILE = "voxcause-heat.ctbl"
HEAT_TABLE_SIZE = 256

#: Anchor colours of the heat table (position in [0, 1], RGB in [0, 1]): dark red -> red -> orange -> yellow
#: -> pale yellow. Dark at the low end so a thresholded map still reads against a grey image.
HEAT_ANCHORS: tuple[tuple[float, tuple[float, float, float]], ...] = (
    (0.0, (0.35, 0.0, 0.0)),
    (0.35, (0.85, 0.08, 0.0)),
    (0.65, (1.0, 0.55, 0.0)),
    (0.9, (1.0, 0.9, 0.1)),
    (1.0, (1.0, 1.0, 0.75)),
)

DEFAULT_THRESHOLD = 0.5
DEFAULT_OPACITY = 0.6


def heat_colors(size: int = HEAT_TABLE_SIZE) -> list[tuple[float, float, float, float]]:
    """`size` RGBA entries interpolated between `HEAT_ANCHORS`; all opaque (the threshold hides low values)."""
    if size < 2:
        raise ValueError(f"a colour table needs at least 2 entries; got {size}")
    colors = []
    for i in range(size):
        t = i / (size - 1)
        for (t0, c0), (t1, c1) in zip(HEAT_ANCHORS, HEAT_ANCHORS[1:], strict=False):
            if t0 <= t <= t1:
                w = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                colors.append((*(a + w * (b - a) for a, b in zip(c0, c1, strict=True)), 1.0))
                break
    return colors  # type: ignore[return-value]


def color_table_text(name: str = HEAT_TABLE_NAME, colors: Sequence[Sequence[float]] | None = None) -> str:
    """The colour table in Slicer's text format (`.ctbl`/`.txt`): `index name R G B A`, 0..255 integers."""
    colors = heat_colors() if colors is None else colors
    lines = [f"# Color table file {name}", f"# {len(colors)} values"]
    for i, rgba in enumerate(colors):
        r, g, b, a = (int(round(255 * min(1.0, max(0.0, v)))) for v in rgba)
        lines.append(f"{i} {name}{i} {r} {g} {b} {a}")
    return "\n".join(lines) + "\n"


def write_color_table(path: str | os.PathLike[str], *, name: str = HEAT_TABLE_NAME) -> Path:
    """Write the heat colour table next to the results (temp file then rename, like every result file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(color_table_text(name), encoding="utf-8")
    os.replace(tmp, path)
    return path


@dataclasses.dataclass(frozen=True)
class MapDisplay:
    """Display of the map as a foreground volume.

    `lower` is the threshold in map units (voxels below it are transparent); the colour table spans
    [`window_min`, `window_max`]; `opacity` is the foreground opacity of the slice views.
    """

    lower: float
    upper: float
    window_min: float
    window_max: float
    opacity: float
    color_table: str = HEAT_TABLE_NAME

    @property
    def window(self) -> float:
        """Window width for `SetWindowLevel`."""
        return self.window_max - self.window_min

    @property
    def level(self) -> float:
        """Window centre for `SetWindowLevel`."""
        return 0.5 * (self.window_max + self.window_min)


def map_display(
    map_min: float, map_max: float, *, threshold: float = DEFAULT_THRESHOLD, opacity: float = DEFAULT_OPACITY
) -> MapDisplay:
    """Display values for a map with range [map_min, map_max].

    Args:
        map_min, map_max: the map's value range (higher = more responsible).
        threshold: fraction of the map's range below which voxels are hidden, in [0, 1).
        opacity: foreground opacity in [0, 1].
    """
    if not (math.isfinite(map_min) and math.isfinite(map_max)):
        raise ValueError(f"the map has non-finite values ({map_min}, {map_max}); it cannot be shown")
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1); got {threshold}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1]; got {opacity}")
    low = min(map_min, 0.0)
    high = map_max if map_max > low else low + 1.0  # an all-zero map still gets a valid window
    lower = low + threshold * (high - low)
    return MapDisplay(lower=lower, upper=max(high, lower), window_min=lower, window_max=high, opacity=opacity)


# Layouts: ids well above Slicer's built-in ones (which stay below ~1000).
EXPLANATION_LAYOUT_ID = 7601
COUNTERFACTUAL_LAYOUT_ID = 7602


def _slice_view(name: str, color: str, group: int = 0) -> str:
    return (
        f'<item><view class="vtkMRMLSliceNode" singletontag="{name}">'
        f'<property name="orientation" action="default">Axial</property>'
        f'<property name="viewlabel" action="default">{name[0]}</property>'
        f'<property name="viewcolor" action="default">{color}</property>'
        f'<property name="viewgroup" action="default">{group}</property>'
        f"</view></item>"
    )


def side_by_side_layout(views: Sequence[tuple[str, str]]) -> str:
    """Slicer layout XML: axial slice views in one row (linked by the module's slice composite settings)."""
    return '<layout type="horizontal">' + "".join(_slice_view(n, c) for n, c in views) + "</layout>"


#: Left: image + map + explanation segments; right: image + the model's segmentation (or the region).
EXPLANATION_LAYOUT = side_by_side_layout([("Red", "#F34A33"), ("Yellow", "#EDD54C")])
#: Original, with the region removed (inpainted), and the region only.
COUNTERFACTUAL_LAYOUT = side_by_side_layout([("Red", "#F34A33"), ("Yellow", "#EDD54C"), ("Green", "#6EB04B")])
