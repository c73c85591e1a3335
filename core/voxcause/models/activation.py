"""Is a model's output already a probability? Then it must not be activated a second time.

A bare model file carries no activation; voxcause's default (softmax for C > 1) is right for logits and wrong
for a model that ends in its own softmax: a second softmax squashes every score towards ``1/C`` (a
four-class model's 0.99 becomes 0.475), and every pass fraction then means something else. A softmax output
is recognised by what it is everywhere: values in [0, 1] that sum to 1 over the channel axis, on the image and
on probes far from it (a flat image at the image's mean and the image's voxels shuffled), which logits meet
only by accident. A single output channel cannot be told apart (a sigmoid's input may lie in [0, 1] too), so
it keeps the default.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: Slack for rounding (float16 exports, onnxruntime's fused softmax) in the range and sum tests.
TOLERANCE = 1e-3


def is_probability(output: torch.Tensor) -> bool:
    """True when a (B, C, *spatial) output with C > 1 is in [0, 1] and sums to 1 over C everywhere."""
    if output.ndim < 2 or output.shape[1] < 2 or not output.is_floating_point():
        return False
    values = output.float()
    if not torch.isfinite(values).all() or values.min() < -TOLERANCE or values.max() > 1 + TOLERANCE:
        return False
    return bool(((values.sum(dim=1) - 1).abs() <= TOLERANCE * values.shape[1]).all())


def probes(inputs: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """Two inputs unlike the image: a flat image at its mean, and its voxels shuffled (fixed seed); (2, C, *S)."""
    image = inputs[:1]
    flat = torch.full_like(image, float(image.mean()))
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(image[0, 0].numel(), generator=generator).to(image.device)
    shuffled = image.flatten(2)[..., order].reshape(image.shape)
    return torch.cat([flat, shuffled])


def outputs_are_probabilities(raw: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor) -> bool:
    """Whether the raw outputs of ``raw`` on the image and on its `probes` are all probabilities (no grad)."""
    with torch.no_grad():
        if not is_probability(raw(inputs[:1])):
            return False
        return all(is_probability(raw(probe[None])) for probe in probes(inputs))
