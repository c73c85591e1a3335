"""Which of a CAM's candidate layers the model itself agrees with: the automatic layer chosen by faithfulness.

No fixed rule picks a good CAM layer for every network. On the trained MONAI UNet of
tests/saliency/test_cam_vs_monai.py the layer the output block reads (the graph rule of ``_layers``) puts 0.08 of
Grad-CAM++'s mass near the cause, a deeper stage end 0.44; on the known-cause DenseNet121 of
tests/saliency/test_saliency_monai.py the graph rule's stage gets 0.0x a uniform map's mass on the cube, the stem
3.7-4.4x. What tells them apart is the model: a map whose top voxels carry the decision keeps it when only they
are shown, and loses it when only they are removed. So the CAM is computed at every candidate layer from the
*same* forward/backward pass (`_layers.faithful_candidates`), and each map's top `KEPT_SHARES` of the occludable
voxels are shown alone on the canvas the certificate tests gradient methods on (`certificate_canvas`) and removed
from the image: four forward passes per candidate, one batch, plus the image itself. Faithfulness = mean over
the shares of (score with the top kept) - (score with it removed), as a share of the image's score. The graph
rule's layer is kept unless another beats it by more than `TIE`.

Scoring on the certificate's canvas is what makes the choice honest rather than tuned: the certificate then tests
the chosen map with the same removal, and still fails it when no candidate localises.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..causal.auto import auto_canvas, canvas_order
from ..certificate import measured

# the shares of the occludable voxels shown alone / removed per candidate: two points of an insertion and a
# deletion curve (the certificate's derived explanations range over 0.5%-50%). One tenth alone could not tell a
# map that holds the lesion among a spread of other voxels from one that is on it (the sample segmenter: both
# 0.98); a fiftieth is lesion-sized.
KEPT_SHARES = (0.02, 0.1)
# how much more faithful (share of the image's score) another layer must be to replace the graph rule's choice
TIE = 0.05


@dataclass
class LayerChoice:
    """The chosen candidate (``index``), every candidate's faithfulness (``rows``) and the canvas they were
    scored on ((C, *S), which the certificate reuses)."""

    index: int
    rows: list[dict]
    canvas: torch.Tensor


def certificate_canvas(model, inputs: torch.Tensor, target, seed: int) -> torch.Tensor:
    """(C, *S) the canvas a method that removes nothing is certified on: the one occlusion ``auto`` chooses
    (`causal.auto.auto_canvas`: it loses the decision without faking evidence)."""
    order = canvas_order(model, inputs, getattr(target, "box", None))
    return auto_canvas(inputs, lambda batch: measured(model, target, batch), seed=seed, order=order)[1]


def _top(values: torch.Tensor, where: torch.Tensor, share: float) -> torch.Tensor:
    """(*S) bool: the positive voxels among the top ``share`` of ``where`` by ``values``."""
    count = max(1, int(round(share * int(where.sum()))))
    ranked = torch.where(where, values, torch.full_like(values, -torch.inf)).flatten()
    top = torch.zeros(ranked.numel(), dtype=torch.bool, device=values.device)
    top[torch.argsort(ranked, descending=True)[:count]] = True
    return top.view_as(values) & where & (values > 0)


def choose_layer(model, inputs: torch.Tensor, target, names: list[str], maps: list[torch.Tensor], *,
                 seed: int, default: int = 0) -> LayerChoice:
    """The most faithful of ``maps`` ((1, 1, *S) each, the CAM at ``names``) on ``inputs`` (1, C, *S):
    ``1 + 2 len(maps)`` forward passes besides the canvas's own."""
    canvas = certificate_canvas(model, inputs, target, seed).reshape(inputs.shape[1:]).to(inputs.device)
    image = inputs[0]
    occludable = (canvas != image).any(dim=0)
    if not bool(occludable.any()):
        occludable = torch.ones_like(occludable)
    batch = [image]
    for cam in maps:
        for share in KEPT_SHARES:
            top = _top(cam[0, 0].to(image.device).float(), occludable, share)
            batch += [torch.where(top, image, canvas), torch.where(top, canvas, image)]
    scores = [score for score, _, _ in measured(model, target, torch.stack(batch))]
    scale = max(abs(scores[0]), 1e-12)
    per = 2 * len(KEPT_SHARES)
    rows = []
    for slot, name in enumerate(names):
        kept = scores[1 + slot * per : 1 + (slot + 1) * per : 2]
        removed = scores[2 + slot * per : 1 + (slot + 1) * per : 2]
        faithful = sum(k - r for k, r in zip(kept, removed, strict=True)) / len(kept) / scale
        rows.append({"layer": name, "faithfulness": round(faithful, 4), "kept": [round(k, 4) for k in kept],
                     "removed": [round(r, 4) for r in removed]})
    best = max(range(len(maps)), key=lambda index: rows[index]["faithfulness"])
    index = best if rows[best]["faithfulness"] > rows[default]["faithfulness"] + TIE else default
    return LayerChoice(index, rows, canvas)
