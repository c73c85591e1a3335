"""Faithfulness benchmark of every explanation method on the sample classifier and segmenter.

Generates held-out sample patients (seeds disjoint from training), writes them as NIfTI with a manifest,
runs ``voxcause benchmark`` on ``classifier3d`` (rex and the saliency family, LayerCAM included) and on ``segmenter3d``
(the same plus ``seggradcam`` and ``occlusion`` -- the two halves of ``dea`` -- and ``dea`` itself), and
prints the Markdown tables that go into the README. Everything is seeded; rerun with:

    python bench/bench_methods.py                 # 4 cases per model (about 15-30 min on a 2-core CPU)
    python bench/bench_methods.py --cases 2 --quick   # smoke run: fewer steps, no inpainting/robustness
    python bench/bench_methods.py --methods gradcam,seggradcam,gradcampp,layercam,scorecam,dea   # the CAM family

Outputs: ``bench/results/<model>/`` (results.csv, summary.csv/.md, verdict.md, curves_*.png).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from voxcause.cli import benchmark as command
from voxcause.samples.generator import make_patient

ROOT = Path(__file__).resolve().parent
MODELS = Path(__file__).resolve().parents[1] / "core" / "voxcause" / "samples" / "models"
HELDOUT = 200_000  # far from the training (0..) and held-out evaluation (100000..) seeds
KINDS = ("meningioma", "glioma", "pituitary")
SETUPS = {
    "classifier3d": "rex,gradcam,gradcampp,layercam,scorecam,occlusion",
    "segmenter3d": "rex,seggradcam,gradcampp,layercam,scorecam,occlusion,dea",
}
# Same occlusion cells for occlusion and for dea's intervention half, so dea is compared with its parts.
OPTIONS = ("rex.iterations=10", "occlusion.cell=8", "dea.cell=8", "dea.n_noise=4")


def write_case(folder: Path, seed: int, kind: str) -> tuple[str, str]:
    """Write one patient's four channels and its whole-tumour mask; return (image cell, mask file)."""
    patient = make_patient(seed, kind)
    names = []
    for c, name in enumerate(("t1", "t1c", "t2", "flair")):
        image = sitk.GetImageFromArray(patient.channels[c])
        image.SetSpacing(patient.spacing)
        image.SetOrigin(patient.origin)
        image.SetDirection(patient.direction)
        path = folder / f"{kind}-{seed}_{name}.nii.gz"
        sitk.WriteImage(image, str(path))
        names.append(path.name)
    mask = sitk.GetImageFromArray((patient.label > 0).astype(np.uint8))
    mask.CopyInformation(image)
    mask_path = folder / f"{kind}-{seed}_mask.nii.gz"
    sitk.WriteImage(mask, str(mask_path))
    return ";".join(names), mask_path.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4, help="patients per model (default 4)")
    parser.add_argument("--models", default="classifier3d,segmenter3d")
    parser.add_argument("--quick", action="store_true", help="10 steps, constant+blur, no robustness")
    parser.add_argument("--out", default=str(ROOT / "results"))
    parser.add_argument("--models-dir", default=str(MODELS), help="folder of <model>/card.json (default: samples)")
    parser.add_argument("--steps", type=int, default=20, help="points per curve minus one (default 20)")
    parser.add_argument("--baselines", default="constant,blur,inpaint")
    parser.add_argument("--perturbations", default="noise,scale,gamma,shift1,shift2")
    parser.add_argument("--rex-iterations", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--methods", default="", help="only these methods (comma-separated; default: all of SETUPS)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sub = argparse.ArgumentParser().add_subparsers()
    cli = command.add_parser(sub)
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = ["id,image,mask"]
        for i in range(args.cases):
            kind = KINDS[i % len(KINDS)]
            image, mask = write_case(folder, HELDOUT + i, kind)
            rows.append(f"{kind}-{HELDOUT + i},{image},{mask}")
        (folder / "cases.csv").write_text("\n".join(rows) + "\n")
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            card = Path(args.models_dir) / name / "card.json"
            if not card.exists():
                print(f"skipping {name}: {card} not found (train the sample models first)", file=sys.stderr)
                continue
            methods = SETUPS[name]
            if args.methods:
                wanted = set(args.methods.split(","))
                methods = ",".join(m for m in SETUPS[name].split(",") if m in wanted)
            argv_ = [str(folder / "cases.csv"), "--model", str(card), "--methods", methods,
                     "--out", str(Path(args.out) / name), "--progress", "none"]
            for option in (f"rex.iterations={args.rex_iterations}", *OPTIONS[1:]):
                argv_ += ["--option", option]
            if args.quick:
                argv_ += ["--steps", "10", "--baselines", "constant,blur", "--perturbations", "none"]
            else:
                argv_ += ["--steps", str(args.steps), "--baselines", args.baselines,
                          "--perturbations", args.perturbations]
            start = time.perf_counter()
            print(f"## {name}\n")
            namespace = cli.parse_args(argv_)
            namespace.run(namespace)
            tables[name] = (Path(args.out) / name / "summary.md").read_text(encoding="utf-8")
            print(f"\n({args.cases} cases, {time.perf_counter() - start:.0f} s)\n")
            print((Path(args.out) / name / "verdict.md").read_text(encoding="utf-8"))
    print("# README tables\n")
    for name, table in tables.items():
        print(f"**{name}** ({args.cases} held-out sample patients; means over cases)\n\n{table}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
