"""Plan, preprocess and train the small nnU-Net v2 model that tests/models/test_nnunet.py explains.

Everything is done by the nnunetv2 package itself: its fingerprint extraction and ExperimentPlanner
(``nnUNetv2_plan_and_preprocess``), then a *reduced* copy of the 3d_fullres plan (plans identifier
``nnUNetPlans_tiny``: patch 24x32x32, three stages of 8/16/32 features) preprocessed by its
DefaultPreprocessor, and its nnUNetTrainer with fewer iterations (``nnUNetTrainer_Tiny`` below), so the two
folds train on two CPU cores in a few minutes and the weights stay small.

The cases (tests/models/nnunet_spheres.py) hold one bright sphere in a noisy body: the sphere is the known cause of
the segmentation. Writes the nnU-Net results folder (dataset.json, plans.json, fold_0 and fold_1 with
checkpoint_final.pth, optimizer state dropped) to tests/models/nnunet/Dataset500_Spheres/.

Run: ``.venv/bin/python scripts/train_nnunet_sample.py [--work /tmp/nnunet-work] [--folds 0 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "models" / "nnunet" / "Dataset500_Spheres"
sys.path.insert(0, str(REPO / "tests" / "models"))

DATASET_ID = 500
DATASET = "Dataset500_Spheres"
PLANS = "nnUNetPlans_tiny"
TRAINER = "nnUNetTrainer_Tiny"
CASES = 24


def write_raw(raw: Path) -> None:
    import SimpleITK as sitk
    from nnunet_spheres import make_case

    folder = raw / DATASET
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    for index in range(CASES):
        image, label = make_case(1000 + index)
        sitk.WriteImage(image, str(folder / "imagesTr" / f"sphere_{index:03d}_0000.nii.gz"))
        sitk.WriteImage(label, str(folder / "labelsTr" / f"sphere_{index:03d}.nii.gz"))
    dataset = {
        "channel_names": {"0": "T1"},
        "labels": {"background": 0, "sphere": 1},
        "numTraining": CASES,
        "file_ending": ".nii.gz",
        "name": "Spheres",
        "description": "voxcause known-cause sample: one bright sphere (label 1) in a noisy body, zero outside",
    }
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=2))


def reduce_plans(preprocessed: Path) -> None:
    """nnUNetPlans.json -> nnUNetPlans_tiny.json: a small 3d_fullres network and patch."""
    plans = json.loads((preprocessed / DATASET / "nnUNetPlans.json").read_text())
    plans["plans_name"] = PLANS
    config = plans["configurations"]["3d_fullres"]
    config["data_identifier"] = "nnUNetPlans_tiny_3d_fullres"
    config["patch_size"] = [24, 32, 32]
    config["batch_size"] = 2
    arch = config["architecture"]["arch_kwargs"]
    arch.update(
        n_stages=3,
        features_per_stage=[8, 16, 32],
        kernel_sizes=[[3, 3, 3]] * 3,
        strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2]],
        n_conv_per_stage=[2, 2, 2],
        n_conv_per_stage_decoder=[2, 2],
    )
    plans["configurations"] = {"3d_fullres": config}
    (preprocessed / DATASET / f"{PLANS}.json").write_text(json.dumps(plans, indent=2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="scratch folder for nnUNet_raw/preprocessed/results (default: a temp dir)")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--iterations", type=int, default=25)
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="nnunet-work-"))
    for name in ("raw", "preprocessed", "results"):
        (work / name).mkdir(parents=True, exist_ok=True)
    # nnunetv2 reads these when it is first imported
    os.environ["nnUNet_raw"] = str(work / "raw")  # noqa: SIM112 - nnU-Net's own names
    os.environ["nnUNet_preprocessed"] = str(work / "preprocessed")  # noqa: SIM112
    os.environ["nnUNet_results"] = str(work / "results")  # noqa: SIM112
    os.environ.setdefault("nnUNet_compile", "false")  # noqa: SIM112

    import torch
    from voxcause.models.trust import load_checkpoint

    CPU = torch.device("cpu")
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprints,
        plan_experiments,
        preprocess,
    )
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    class nnUNetTrainer_Tiny(nnUNetTrainer):  # noqa: N801 - nnU-Net's naming convention
        """nnUNetTrainer with few, short epochs (CPU-sized); everything else is nnU-Net's default."""

        def __init__(self, plans, configuration, fold, dataset_json, device=CPU):
            super().__init__(plans, configuration, fold, dataset_json, device)
            self.num_iterations_per_epoch = args.iterations
            self.num_val_iterations_per_epoch = 2
            self.num_epochs = args.epochs

    torch.manual_seed(0)
    torch.set_num_threads(1)
    started = time.perf_counter()
    write_raw(work / "raw")
    extract_fingerprints([DATASET_ID], check_dataset_integrity=True, num_processes=1)
    plan_experiments([DATASET_ID])
    reduce_plans(work / "preprocessed")
    preprocess([DATASET_ID], plans_identifier=PLANS, configurations=("3d_fullres",), num_processes=(1,))
    print(f"planned and preprocessed in {time.perf_counter() - started:.0f} s", flush=True)

    # augment in this process: no worker pool (planning needs >0); one thread: on shared cores, two are slower
    os.environ["nnUNet_n_proc_DA"] = "0"  # noqa: SIM112
    torch.set_num_threads(1)
    preprocessed = work / "preprocessed" / DATASET
    plans = json.loads((preprocessed / f"{PLANS}.json").read_text())
    dataset_json = json.loads((preprocessed / "dataset.json").read_text())
    for fold in args.folds:
        fold_plans = {**plans, "continue_training": False}  # nnUNetTrainer pops this (run_training.py sets it)
        trainer = nnUNetTrainer_Tiny(fold_plans, "3d_fullres", fold, dataset_json, device=torch.device("cpu"))
        trainer.run_training()
        print(f"fold {fold} trained, {time.perf_counter() - started:.0f} s", flush=True)

    results = work / "results" / DATASET / f"{TRAINER}__{PLANS}__3d_fullres"
    if OUT.exists():
        shutil.rmtree(OUT)
    target = OUT / results.name
    target.mkdir(parents=True)
    for name in ("dataset.json", "plans.json", "dataset_fingerprint.json"):
        shutil.copy(results / name, target / name)
    for fold in args.folds:
        checkpoint = load_checkpoint(results / f"fold_{fold}" / "checkpoint_final.pth")  # weights-only
        checkpoint["optimizer_state"] = None  # halves the file; inference never reads it
        (target / f"fold_{fold}").mkdir()
        torch.save(checkpoint, target / f"fold_{fold}" / "checkpoint_final.pth")
        log = sorted((results / f"fold_{fold}").glob("training_log_*.txt"))
        if log:
            shutil.copy(log[-1], target / f"fold_{fold}" / "training_log.txt")
    print(f"wrote {target} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
