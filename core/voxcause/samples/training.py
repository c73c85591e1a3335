"""Train the four sample models from generated patients (deterministic; CPU, a few minutes each).

Models (folders under ``models/``, each with card.json, weights.pt, metrics.json):
- ``classifier3d``: MONAI ResNet (3D, basic blocks, 8-64 channels) over no tumour / meningioma / glioma / pituitary;
- ``segmenter3d``: MONAI UNet (3D), background / whole tumour;
- ``classifier2d``: MONAI ResNet (2D) on axial slices (several per patient);
- ``shortcut3d``: the same 3D ResNet trained on a *confounded* set whose labels follow the site's scanner tag
  (the code, i.e. the channel it lights up, is the label), not the tumour. Every training patient appears
  twice, identical but for the tag: once with its own site's tag (tag = tumour type) and once with another
  site's tag (`SHORTCUT_TAGS_PER_PATIENT`). Half of the labels thus disagree with the tumour, and the two
  copies of one brain differ only in the tag, so the tag is the one feature that fits every label and the
  model cannot memorise patients instead. On held-out patients whose tag names another class
  (decorrelated) it follows the tag and its accuracy collapses, which metrics.json records.
  Why the tag is 20 mm and 8 mm inside the corner (measured with these seeds, share of decorrelated held-out
  cases that follow the tag): a 12 mm tag 4 mm from the edges sits one voxel from the model grid's edge,
  where the training shift (`torch.roll`, up to 2 voxels) wraps it round to the far side in about half the
  batches; it was followed in only 24% (25% of labels mismatched, those cases repeated 3x) or 20% (this
  recipe). 12 mm, 8 mm from the edges: 82%; 20 mm, 8 mm: 100%, with either set of labels.

Splits are by patient: a patient is ``"<kind>-<seed>"``; training seeds and held-out seeds are disjoint and
`check_split` refuses any overlap (also for slices, whose sample ids carry their patient id).

Every input goes through `preprocess.prepare_for_model` (resize, then z-score), as the core does.
Run: ``python scripts/train_samples.py`` (``--help`` for the options).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..evaluate.metrics import dice
from .cards import MODELS_DIR, build_network
from .contrast import SEQUENCES
from .generator import KINDS, LABELS, add_marker, axial_slices, make_patient, marker_box
from .preprocess import prepare_for_model, resize, resize_mask

TRAIN_SEED_BASE = 0
HELDOUT_SEED_BASE = 100_000
SHORTCUT_TAGS_PER_PATIENT = 2  # the site's own tag, then another site's
TAG_BOX_AIR = 300.0  # most signal the tag's box may hold before the tag (Rician noise of air is ~30, tissue ~1000)
SLICES_PER_PATIENT = 4
DEFAULT_EPOCHS = {"classifier3d": 40, "segmenter3d": 50, "classifier2d": 30, "shortcut3d": 30}
SHIFT = {"classifier3d": 2, "shortcut3d": 2}  # random translation (voxels) while training

def _resnet(spatial_dims: int) -> dict:
    """The small MONAI ResNet (basic blocks, 8-64 channels, 4 sequences in, 4 classes out) of the classifiers."""
    return {"_target_": "monai.networks.nets.ResNet", "block": "basic", "layers": [1, 1, 1, 1],
            "block_inplanes": [8, 16, 32, 64], "spatial_dims": spatial_dims, "n_input_channels": 4,
            "conv1_t_size": 3, "conv1_t_stride": 2, "num_classes": 4}


SPECS: dict[str, dict] = {
    "classifier3d": {
        "task": "classification",
        "network": _resnet(3),
        "labels": list(LABELS),
        "spatial_size": [48, 56, 48],
        "description": "3D tumour-type classifier (no tumour, meningioma, glioma, pituitary) trained on "
                       "voxcause sample patients (MNI152 anatomy, 2 mm); input resized to about 4 mm.",
    },
    "segmenter3d": {
        "task": "segmentation",
        "network": {"_target_": "monai.networks.nets.UNet", "spatial_dims": 3, "in_channels": 4,
                    "out_channels": 2, "channels": [16, 32, 64, 128], "strides": [2, 2, 2],
                    "num_res_units": 0},
        "labels": ["background", "tumour"],
        "spatial_size": [56, 64, 56],
        "description": "3D whole-tumour segmenter (BraTS label > 0) trained on voxcause sample patients; "
                       "input resized to about 3.5 mm.",
    },
    "classifier2d": {
        "task": "classification",
        "network": _resnet(2),
        "labels": list(LABELS),
        "spatial_size": [96, 80],
        "description": "2D tumour-type classifier on axial slices (4, y, x) of voxcause sample patients.",
    },
    "shortcut3d": {
        "task": "classification",
        "network": _resnet(3),
        "labels": list(LABELS),
        "spatial_size": [48, 56, 48],
        "description": "DELIBERATELY SHORTCUT-TRAINED 3D classifier: in its training set a scanner tag "
                       "(bright 20 mm block in the air of the superior-anterior corner, in the channel given "
                       "by the class) tells the label; tumours disagree with it in half the training cases. "
                       "Right for the wrong reason; for demonstrating explanations.",
    },
}


@dataclass(frozen=True)
class Split:
    """Patient ids of the training and held-out sets, ``"<kind>-<seed>"``."""

    train: tuple[str, ...]
    heldout: tuple[str, ...]


def patient_id(kind: str, seed: int) -> str:
    return f"{kind}-{seed}"


def patient_of(sample_id: str) -> str:
    """The patient of a sample id (``"glioma-3"`` or a slice ``"glioma-3/z41"``)."""
    return sample_id.split("/", 1)[0]


def check_split(train_ids: Iterable[str], heldout_ids: Iterable[str]) -> None:
    """Raise `InputError` when a patient has samples on both sides (scans, slices or tags of one patient)."""
    train = {patient_of(s) for s in train_ids}
    heldout = {patient_of(s) for s in heldout_ids}
    leaked = sorted(train & heldout)
    if leaked:
        raise InputError(
            f"the split leaks {len(leaked)} patient(s) into both training and held-out sets (e.g. {leaked[0]}): "
            "split by patient id, not by slice or scan"
        )


def make_split(train_per_kind: int, heldout_per_kind: int) -> Split:
    train = tuple(patient_id(k, TRAIN_SEED_BASE + i) for k in KINDS for i in range(train_per_kind))
    heldout = tuple(patient_id(k, HELDOUT_SEED_BASE + i) for k in KINDS for i in range(heldout_per_kind))
    check_split(train, heldout)
    return Split(train, heldout)


def _parse(pid: str) -> tuple[str, int]:
    kind, seed = pid.rsplit("-", 1)
    return kind, int(seed)


def prepare_patient(pid: str, heldout: bool) -> dict:
    """Every model input one patient contributes (float16 to halve memory), by `prepare_for_model`."""
    torch.set_num_threads(1)
    kind, seed = _parse(pid)
    patient = make_patient(seed, kind)
    rng = np.random.default_rng([seed, KINDS.index(kind), 99])
    out: dict = {"id": pid, "y": KINDS.index(kind)}
    half = np.float16
    out["cls"] = prepare_for_model(patient.channels, SPECS["classifier3d"]["spatial_size"]).astype(half)
    size = SPECS["segmenter3d"]["spatial_size"]
    out["seg"] = prepare_for_model(patient.channels, size).astype(half)
    out["seg_mask"] = resize_mask(patient.label > 0, size)
    zs = axial_slices(patient, SLICES_PER_PATIENT)
    size2 = SPECS["classifier2d"]["spatial_size"]
    out["slices"] = np.stack([prepare_for_model(patient.channels[:, z], size2) for z in zs]).astype(half)
    out["slice_ids"] = [f"{pid}/z{z}" for z in zs]
    # shortcut set: the label is the tag's code; the site's own tag (= tumour type), then another site's tag
    box_signal = float(patient.channels[(slice(None),) + marker_box(patient.label.shape, patient.spacing[0])].max())
    if box_signal > TAG_BOX_AIR:
        raise InputError(f"{pid}: the scanner tag's box holds signal {box_signal:.0f}: it would cover the head")
    other = int(rng.choice([k for k in range(len(KINDS)) if k != out["y"]]))
    size3 = SPECS["shortcut3d"]["spatial_size"]
    codes = [out["y"], other][: 1 if heldout else SHORTCUT_TAGS_PER_PATIENT]
    out["shortcut_y"] = codes
    out["shortcut"] = np.stack(
        [prepare_for_model(add_marker(patient, code).channels, size3) for code in codes]).astype(half)
    if heldout:  # decorrelated: the tag names another class than the tumour
        out["decorrelated_code"] = other
        out["decorrelated"] = prepare_for_model(add_marker(patient, other).channels, size3).astype(half)
        out["label_full"] = np.packbits(patient.label > 0)
        out["full_shape"] = patient.label.shape
    return out


def _prepare_star(args: tuple[str, bool]) -> dict:
    return prepare_patient(*args)


def _store(item: dict, heldout: bool, cache: Path | None) -> dict:
    import pickle

    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        (cache / f"{item['id']}{'-h' if heldout else ''}.pkl").write_bytes(pickle.dumps(item))
    return item


def build_dataset(ids: Sequence[str], *, heldout: bool, workers: int, cache: Path | None) -> list[dict]:
    """Prepared samples of `ids` (cached in `cache` as .npz-free pickles keyed by id when given)."""
    import pickle

    results: dict[str, dict] = {}
    todo = []
    for pid in ids:
        path = cache / f"{pid}{'-h' if heldout else ''}.pkl" if cache else None
        if path is not None and path.exists():
            results[pid] = pickle.loads(path.read_bytes())
        else:
            todo.append(pid)
    if todo:
        args = [(pid, heldout) for pid in todo]
        if workers > 1:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                prepared = pool.imap_unordered(_prepare_star, args, chunksize=1)
                for item in prepared:
                    results[item["id"]] = _store(item, heldout, cache)
        else:
            for a in args:
                item = prepare_patient(*a)
                results[item["id"]] = _store(item, heldout, cache)
    return [results[pid] for pid in ids]


def _flip_x(batch: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
    """Left-right flip (last axis) of the flagged samples: tumours occur on both sides."""
    return torch.where(flags.view(-1, *([1] * (batch.ndim - 1))), batch.flip(-1), batch)


def train_network(
    network: torch.nn.Module, inputs: np.ndarray, targets: np.ndarray, *, segmentation: bool, epochs: int,
    seed: int, lr: float = 2e-3, batch_size: int = 8, shift: int = 0, log=print,
) -> torch.nn.Module:
    """AdamW + one-cycle schedule; cross-entropy (classification) or Dice + cross-entropy (segmentation).
    Augmentation: left-right flips; for classifiers optionally a random roll of up to `shift` voxels."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x_all = torch.from_numpy(inputs)
    y_all = torch.from_numpy(targets)
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * int(np.ceil(len(x_all) / batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.15)
    network.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x_all), generator=generator)
        total, start = 0.0, time.time()
        for i in range(0, len(order), batch_size):
            index = order[i : i + batch_size]
            x = x_all[index].float()
            y = y_all[index]
            flags = torch.rand(len(index), generator=generator) < 0.5
            x = _flip_x(x, flags)
            if shift and not segmentation:  # small translation: tumours are not at fixed voxels
                offsets = torch.randint(-shift, shift + 1, (x.ndim - 2,), generator=generator).tolist()
                x = torch.roll(x, offsets, dims=tuple(range(2, x.ndim)))
            logits = network(x)
            if segmentation:
                y = _flip_x(y.long(), flags)
                loss = F.cross_entropy(logits, y) + _soft_dice_loss(logits, y)
            else:
                loss = F.cross_entropy(logits, y.long())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(index)
        log(f"  epoch {epoch + 1}/{epochs} loss {total / len(x_all):.4f} ({time.time() - start:.1f} s)")
    network.eval()
    return network


def _soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of 1 - soft Dice of the foreground class, per sample: a Dice over the whole batch
    lets large gliomas outweigh a small pituitary adenoma, which then comes out under-segmented. The +1
    smoothing makes a tumour-free case ask for an empty prediction."""
    probability = torch.softmax(logits, 1)[:, 1].flatten(1)
    truth = (target == 1).float().flatten(1)
    intersection = (probability * truth).sum(1)
    return (1.0 - (2 * intersection + 1.0) / (probability.sum(1) + truth.sum(1) + 1.0)).mean()


@torch.no_grad()
def predict(network: torch.nn.Module, inputs: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """Raw outputs (logits) of `network` over `inputs`, in eval mode."""
    network.eval()
    out = [network(torch.from_numpy(inputs[i : i + batch_size]).float()) for i in range(0, len(inputs), batch_size)]
    return torch.cat(out).numpy()


def confusion(truth: Sequence[int], predicted: Sequence[int], n: int = 4) -> list[list[int]]:
    matrix = np.zeros((n, n), int)
    for t, p in zip(truth, predicted, strict=True):
        matrix[t, p] += 1
    return matrix.tolist()


def segment_to_image(logits: np.ndarray, full_shape: Sequence[int]) -> np.ndarray:
    """Whole-tumour mask in image space: logits (2, *S_model) resized (trilinear) to the image, argmax."""
    return resize(logits, full_shape).argmax(0) == 1


def write_model(name: str, network: torch.nn.Module, metrics: dict, out_dir: Path = MODELS_DIR) -> Path:
    """Write models/<name>/{card.json, weights.pt, metrics.json}; returns the folder."""
    spec = SPECS[name]
    folder = out_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    card = {
        "name": name,
        "task": spec["task"],
        "network": spec["network"],
        "weights": "weights.pt",
        "labels": spec["labels"],
        "channels": list(SEQUENCES),
        "spatial_size": spec["spatial_size"],
        "normalize": "zscore",
        "activation": "softmax",
        "resize": "resize",
        "description": spec["description"]
        + " Preprocessing: resize (trilinear/bilinear, align_corners=False) to spatial_size, then z-score.",
        "metrics": "metrics.json",
    }
    state = {k: v.detach().clone() for k, v in network.state_dict().items()}
    torch.save(state, folder / "weights.pt")
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return folder


def _stack(samples: list[dict], key: str) -> np.ndarray:
    return np.stack([s[key] for s in samples])


def run_training(
    *, train_per_kind: int = 24, heldout_per_kind: int = 10, epochs: dict | None = None,
    models: Sequence[str] = tuple(SPECS), workers: int = 2, cache: Path | None = None, threads: int = 1,
    seed: int = 0, out_dir: Path = MODELS_DIR, log=print,
) -> dict[str, dict]:
    """Generate the split, train the requested models, evaluate on held-out patients, write the folders."""
    epochs = {**DEFAULT_EPOCHS, **(epochs or {})}
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    split = make_split(train_per_kind, heldout_per_kind)
    started = time.time()
    train = build_dataset(split.train, heldout=False, workers=workers, cache=cache)
    heldout = build_dataset(split.heldout, heldout=True, workers=workers, cache=cache)
    log(f"data: {len(train)} training / {len(heldout)} held-out patients in {time.time() - started:.0f} s")
    check_split([s["id"] for s in train], [s["id"] for s in heldout])
    common = {
        "train_patients": len(train), "heldout_patients": len(heldout), "split": "by patient (kind-seed)",
        "labels_order": list(LABELS), "preprocessing": "resize (align_corners=False) then zscore",
        "seed": seed,
    }
    results = {}
    for name in models:
        log(f"training {name}")
        started = time.time()
        torch.manual_seed(seed)
        network = build_network(SPECS[name]["network"])
        if name == "segmenter3d":
            x, y = _stack(train, "seg"), _stack(train, "seg_mask").astype(np.int64)
        elif name == "classifier2d":
            slice_ids = [i for s in train for i in s["slice_ids"]]
            check_split(slice_ids, [i for s in heldout for i in s["slice_ids"]])
            x = np.concatenate([s["slices"] for s in train])
            y = np.concatenate([[s["y"]] * len(s["slices"]) for s in train])
        elif name == "shortcut3d":  # every tagged copy of every patient, labelled by its tag
            x = np.concatenate([s["shortcut"] for s in train])
            y = np.concatenate([s["shortcut_y"] for s in train])
        else:
            x, y = _stack(train, "cls"), np.array([s["y"] for s in train])
        train_network(network, x, y, segmentation=name == "segmenter3d", epochs=epochs[name], seed=seed,
                      shift=SHIFT.get(name, 0), log=log)
        seconds = time.time() - started
        metrics = {**common, "model": name, "epochs": epochs[name], "train_seconds": round(seconds, 1),
                   **evaluate(name, network, heldout)}
        write_model(name, network, metrics, out_dir)
        log(f"  {name}: {json.dumps({k: v for k, v in metrics.items() if not isinstance(v, list | dict)})}")
        results[name] = metrics
    return results


def evaluate(name: str, network: torch.nn.Module, heldout: list[dict]) -> dict:
    """Held-out metrics of one model (patient level; slices for the 2D model)."""
    truth = [s["y"] for s in heldout]
    if name == "segmenter3d":
        logits = predict(network, _stack(heldout, "seg"))
        scores, false_positive = {}, []
        for sample, out in zip(heldout, logits, strict=True):
            shape = tuple(sample["full_shape"])
            reference = np.unpackbits(sample["label_full"])[: int(np.prod(shape))].reshape(shape).astype(bool)
            mask = segment_to_image(out, shape)
            if reference.any():
                scores.setdefault(LABELS[sample["y"]], []).append(dice(mask, reference))
            else:
                false_positive.append(int(mask.sum()))
        every = [d for v in scores.values() for d in v]
        return {
            "dice_mean": round(float(np.mean(every)), 4),
            "dice_per_class": {k: round(float(np.mean(v)), 4) for k, v in scores.items()},
            "dice_min": round(float(np.min(every)), 4),
            "tumour_free_false_positive_voxels": false_positive,
            "dice_space": "image (2 mm), logits resized trilinear then argmax",
        }
    if name == "classifier2d":
        x = np.concatenate([s["slices"] for s in heldout])
        t = np.concatenate([[s["y"]] * len(s["slices"]) for s in heldout]).tolist()
        predicted = predict(network, x).argmax(1).tolist()
        per_patient = []
        offset = 0
        logits = predict(network, x)
        for s in heldout:
            n = len(s["slices"])
            per_patient.append(int(logits[offset : offset + n].mean(0).argmax()))
            offset += n
        return {
            "accuracy": round(float(np.mean(np.array(predicted) == np.array(t))), 4),
            "slices": len(t),
            "confusion_matrix": confusion(t, predicted),
            "patient_accuracy_mean_logits": round(float(np.mean(np.array(per_patient) == np.array(truth))), 4),
        }
    if name == "shortcut3d":
        with_tag = predict(network, np.concatenate([s["shortcut"] for s in heldout])).argmax(1)
        decorrelated = predict(network, _stack(heldout, "decorrelated")).argmax(1)
        codes = np.array([s["decorrelated_code"] for s in heldout])
        return {
            "accuracy_tag_matches_class": round(float(np.mean(with_tag == np.array(truth))), 4),
            "accuracy_tag_decorrelated": round(float(np.mean(decorrelated == np.array(truth))), 4),
            "follows_tag_decorrelated": round(float(np.mean(decorrelated == codes)), 4),
            "confusion_matrix_tag_matches_class": confusion(truth, with_tag.tolist()),
            "confusion_matrix_tag_decorrelated": confusion(truth, decorrelated.tolist()),
            "decorrelated_tag": "names another class than the tumour",
            "tagged_copies_per_training_patient": SHORTCUT_TAGS_PER_PATIENT,
            "shortcut_label_mismatch_in_training": round(1 - 1 / SHORTCUT_TAGS_PER_PATIENT, 4),
        }
    predicted = predict(network, _stack(heldout, "cls")).argmax(1)
    return {
        "accuracy": round(float(np.mean(predicted == np.array(truth))), 4),
        "confusion_matrix": confusion(truth, predicted.tolist()),
    }
