"""A stand-in for the `voxcause` command line that follows its contract, for testing the Slicer side alone.

Behaviour is chosen by the model file: a JSON object {"behaviour": "ok" | "bad-model" | "crash" | "slow"}; any
other file is treated as a model that does not load (exit 2, as the core does). "ok" writes the run folder
(map.nii.gz peaked at the brightest voxel, explanation.seg.nrrd, summary.json) or, for `counterfactual`,
removed.nii.gz / only.nii.gz / summary.json. "slow" keeps printing progress and starts a grandchild process
(its pid in <out>/grandchild.pid) so that Cancel can be checked to end the whole tree.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def emit(**event):
    print(json.dumps(event), file=sys.stderr, flush=True)


def parse(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["explain", "counterfactual"])
    parser.add_argument("images", nargs="+")
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--progress")
    for flag in ("--method", "--target", "--region", "--mask", "--device", "--seed", "--iterations", "--occlusion"):
        parser.add_argument(flag)
    return parser.parse_args(argv)


def write_outputs(args):
    import numpy as np
    import SimpleITK as sitk
    import slicerio

    image = sitk.ReadImage(args.images[0])
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    grid = np.indices(array.shape)
    bright = array > array.max() - 100  # the lesion: its centroid is the peak of the stand-in map
    peak = [int(round(float(g[bright].mean()))) for g in grid]
    dist2 = sum((g - p) ** 2 for g, p in zip(grid, peak, strict=True))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.command == "counterfactual":
        for name, scale in (("removed", 0.5), ("only", 0.1)):
            result = sitk.GetImageFromArray(array * scale)
            result.CopyInformation(image)
            sitk.WriteImage(result, str(out / f"{name}.nii.gz"))
        summary = {"p_orig": 0.9, "p_remove": 0.2, "p_only": 0.7, "delta_drop": 0.7, "delta_focus": 0.7}
    else:
        heat = np.exp(-dist2 / 18.0).astype(np.float32)
        result = sitk.GetImageFromArray(heat)
        result.CopyInformation(image)
        sitk.WriteImage(result, str(out / "map.nii.gz"))
        matrix = np.eye(4)
        direction = np.array(image.GetDirection()).reshape(3, 3)
        matrix[:3, :3] = direction * np.array(image.GetSpacing())
        matrix[:3, 3] = image.GetOrigin()
        seg = slicerio.create_segmentation(heat.T.shape, matrix)
        slicerio.add_segment(
            seg, (heat > 0.5).T, {"id": "sufficient", "name": "sufficient explanation", "color": [1.0, 0.85, 0.0]}
        )
        slicerio.add_segment(
            seg, (heat > 0.2).T, {"id": "level1", "name": "responsibility level 1", "color": [0.9, 0.2, 0.1]}
        )
        slicerio.write_segmentation(str(out / "explanation.seg.nrrd"), seg)
        summary = {
            "method": args.method,
            "target": {"index": 1, "label": "lesion"},
            "score": 0.93,
            "forward_passes": 123,
            "seconds": 0.4,
            "device": args.device,
            "version": "fake",
            "sufficient": {"voxels": int((heat > 0.5).sum()), "fraction": float((heat > 0.5).mean()), "score": 0.9},
            "images": [str(Path(p).resolve()) for p in args.images],
        }
    (out / "summary.json").write_text(json.dumps(summary))


def report(argv):
    out = Path(argv[0])
    assert argv[1:] == ["--progress", "json"], argv
    if not (out / "summary.json").is_file():
        emit(event="error", message=f"{out} is not a run folder: pass the --out folder of a run")
        return 2
    (out / "report.md").write_text("# Findings\nThe explanation lies in the bright lesion.\n")
    emit(event="done", out=str(out))
    return 0


def main(argv):
    if argv[:1] == ["report"]:
        return report(argv[1:])
    args = parse(argv)
    try:
        behaviour = json.loads(Path(args.model).read_text(encoding="utf-8")).get("behaviour", "ok")
    except (OSError, ValueError, AttributeError):
        behaviour = "bad-model"
    if args.device == "cpu" and os.environ.get("CUDA_VISIBLE_DEVICES") != "":
        emit(event="error", message="CPU run without CUDA_VISIBLE_DEVICES=''")
        return 1
    if behaviour == "bad-model":
        message = f"cannot load model {args.model}: not a TorchScript, ONNX or card file; choose a valid model"
        print(message, file=sys.stderr)
        emit(event="error", message=message)
        return 2
    if behaviour == "crash":
        print("Traceback (most recent call last):\nRuntimeError: boom", file=sys.stderr)
        return 1
    if behaviour == "slow":
        Path(args.out).mkdir(parents=True, exist_ok=True)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        (Path(args.out) / "grandchild.pid").write_text(str(child.pid))
        for i in range(1200):
            emit(event="progress", stage="causal search", fraction=i / 1200)
            time.sleep(0.1)
        return 0
    for i, stage in enumerate(("loading model", "causal search", "sufficient explanation", "writing")):
        emit(event="progress", stage=stage, fraction=i / 4)
    print("a plain log line")
    write_outputs(args)
    emit(event="done", out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
