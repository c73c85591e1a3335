"""Results a person can open in Slicer without this module: a colour table file and an `.mrb` scene.

`write_scene_mrb(out_dir)` builds a scene from a run folder with plain MRML (the `slicer-core` wheel is
enough), sets the display up exactly as the panel would (heat colour table, threshold, opacity, explanation
and model segmentation side by side, slices through the peak) and saves it as one `.mrb` file, which Slicer
opens with File > Open (or drag and drop).

Command line (in an environment with slicer-core):
    python -m VoxCauseLib.bundle OUT_DIR [--image IMAGE] [--threshold 0.5] [--opacity 0.6]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import display, mrml

MRB_FILE = "voxcause-scene.mrb"


def _images_from_summary(out_dir: Path) -> list[Path]:
    """Input image paths recorded in summary.json (keys `images`, `image` or `inputs`), when they still exist."""
    try:
        summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    for key in ("images", "image", "inputs", "input"):
        value = summary.get(key) if isinstance(summary, dict) else None
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            paths = [Path(v) for v in value]
            if all(p.is_file() for p in paths):
                return paths
    return []


def build_scene(
    out_dir: str | os.PathLike[str],
    *,
    images: Sequence[str | os.PathLike[str]] | None = None,
    threshold: float = display.DEFAULT_THRESHOLD,
    opacity: float = display.DEFAULT_OPACITY,
) -> tuple[Any, mrml.ResultNodes, Any]:
    """A new scene holding the input image (when known) and the run's results, displayed. Returns
    (scene, result nodes, background node or None)."""
    slicer = mrml.mrml_module()
    out_dir = Path(out_dir)
    scene = slicer.vtkMRMLScene()
    mrml.ensure_default_colors(scene, mrml=slicer)  # the tables Slicer itself has (Grey for the image)
    paths = [Path(p) for p in images] if images else _images_from_summary(out_dir)
    background = None
    if paths:
        background = mrml.load_volume(scene, paths[0], name=_stem(paths[0]))
    nodes = mrml.import_results(
        scene,
        out_dir,
        name=_stem(paths[0]) if paths else "voxcause",
        background=background,
        threshold=threshold,
        opacity=opacity,
    )
    return scene, nodes, background


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".seg.nrrd", ".nrrd", ".nii", ".mha", ".mhd", ".png"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def write_scene_mrb(
    out_dir: str | os.PathLike[str],
    *,
    images: Sequence[str | os.PathLike[str]] | None = None,
    threshold: float = display.DEFAULT_THRESHOLD,
    opacity: float = display.DEFAULT_OPACITY,
    file_name: str = MRB_FILE,
) -> Path:
    """Write `<out_dir>/voxcause-scene.mrb` and `<out_dir>/voxcause-heat.ctbl`; returns the `.mrb` path.

    Args:
        out_dir: a run folder written by `voxcause explain` or `voxcause counterfactual`.
        images: the input image(s); default: the paths summary.json records. Without one the map is shown alone.
        threshold, opacity: initial display of the map (see `display.map_display`).

    Raises:
        ValueError: the run folder lacks a readable map (or counterfactual volumes).
        ImportError: MRML (Slicer or slicer-core) is not installed in this Python.
    """
    out_dir = Path(out_dir)
    if not (out_dir / mrml.MAP_FILE).is_file() and not (out_dir / mrml.REMOVED_FILE).is_file():
        raise ValueError(f"{out_dir} is not a voxcause run folder (no map.nii.gz): pass the --out folder of a run.")
    display.write_color_table(out_dir / display.HEAT_TABLE_FILE)
    scene, _, _ = build_scene(out_dir, images=images, threshold=threshold, opacity=opacity)
    work = Path(tempfile.mkdtemp(prefix="voxcause-mrb-"))
    try:
        scene.SetRootDirectory(os.fspath(work))
        tmp = work / file_name
        if not scene.WriteToMRB(os.fspath(tmp)):
            raise ValueError(f"Writing the scene to {tmp} failed; check free disk space and permissions.")
        target = out_dir / file_name
        shutil.move(os.fspath(tmp), os.fspath(out_dir / f".{file_name}.tmp"))
        os.replace(out_dir / f".{file_name}.tmp", target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        scene.Clear(True)
    return target


def read_scene_mrb(path: str | os.PathLike[str]) -> Any:
    """Open an `.mrb` into a new scene with plain MRML (what Slicer does on File > Open)."""
    slicer = mrml.mrml_module()
    scene = slicer.vtkMRMLScene()
    cache_dir = tempfile.mkdtemp(prefix="voxcause-cache-")
    cache = slicer.vtkCacheManager()
    cache.SetRemoteCacheDirectory(cache_dir)
    io = slicer.vtkDataIOManager()
    io.SetCacheManager(cache)
    scene.SetCacheManager(cache)
    scene.SetDataIOManager(io)
    mrml.ensure_default_colors(scene, mrml=slicer)
    if not scene.ReadFromMRB(os.fspath(Path(path).resolve())):
        raise ValueError(f"Cannot read scene {path}: the file is not a Slicer .mrb bundle.")
    return scene


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m VoxCauseLib.bundle OUT_DIR`: write the colour table and the .mrb scene for a run folder."""
    parser = argparse.ArgumentParser(prog="python -m VoxCauseLib.bundle", description=main.__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--image", action="append", type=Path, help="input image (default: from summary.json)")
    parser.add_argument("--threshold", type=float, default=display.DEFAULT_THRESHOLD)
    parser.add_argument("--opacity", type=float, default=display.DEFAULT_OPACITY)
    args = parser.parse_args(argv)
    try:
        path = write_scene_mrb(args.out_dir, images=args.image, threshold=args.threshold, opacity=args.opacity)
    except ImportError:
        print(
            "MRML is not installed: install slicer-core (pip install slicer-core) or run inside Slicer.",
            file=sys.stderr,
        )
        return 2
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
