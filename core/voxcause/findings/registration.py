"""Affine registration of a subject scan to an MNI template (SimpleITK, Mattes mutual information).

Why: atlas names are only meaningful once the scan sits in the atlas's space. Most clinical scans are in
scanner space, so we bring the template to the subject: the subject is the *fixed* image and the template
the *moving* one, which gives a transform T mapping subject points to template (MNI) points. With it the
atlas is resampled onto the subject's own grid (nearest neighbour), so masks never leave their geometry,
and a subject point p has MNI coordinates T(p).

Method: centre-of-mass initialisation, then rigid (Euler) and affine stages, Mattes mutual information
(contrast-agnostic: T1, T2, FLAIR, CT all work against a T1 template), multi-resolution (shrink 4-2-1 on a
2 mm copy), regular-step gradient descent with physical-shift scales, a fixed random seed for sampling.

Quality: the Pearson correlation (normalised cross-correlation, NCC) between the subject and the warped
template inside the template's brain, the Dice overlap of that brain with the subject's foreground, and
the final Mattes MI value. `quality` is "good" when NCC >= 0.5, "poor" (a warning) when NCC >= 0.3,
otherwise "failed" (atlas naming is skipped, with this reason); a brain Dice under 0.3 (the template
landed mostly outside the subject) also fails. NCC suits same-contrast (T1) subjects; for other contrasts
pass a T1 channel first, as a T2 or FLAIR anti-correlates with a T1 template. A transform whose volume scale
is outside 0.5-2 also fails: no adult head is half or twice the template.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from voxcause.errors import InputError

GOOD_NCC, POOR_NCC = 0.5, 0.3
MIN_DICE = 0.3


@dataclass
class Registration:
    """Result of `register_to_template`.

    Attributes:
        transform: maps subject physical points (LPS) to template physical points; None when it failed.
        quality: "good" | "poor" | "failed" | "identity" (the image was already in template space).
        ncc, dice, mattes_mi: quality measures (see module docstring); mattes_mi is negative (lower = better).
        seconds: wall time.
        message: why it is poor/failed, for the findings' warnings.
    """

    transform: sitk.Transform | None
    quality: str
    ncc: float
    dice: float
    mattes_mi: float | None = None
    seconds: float = 0.0
    message: str = ""
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {
            "performed": self.quality != "identity",
            "method": "SimpleITK affine (rigid then affine), Mattes mutual information",
            "quality": self.quality,
            "ncc": round(self.ncc, 4),
            "brain_dice": round(self.dice, 4),
            "mattes_mi": None if self.mattes_mi is None else round(self.mattes_mi, 4),
            "seconds": round(self.seconds, 2),
        }
        if self.message:
            out["message"] = self.message
        return out


def _isotropic(image: sitk.Image, spacing_mm: float) -> sitk.Image:
    """Smooth and resample to `spacing_mm` isotropic (an anti-aliased copy to register on)."""
    image = sitk.Cast(image, sitk.sitkFloat32)
    old_sp = np.array(image.GetSpacing())
    if np.all(old_sp >= spacing_mm * 0.99):
        return image
    sigma = [max(0.0, (spacing_mm**2 - s**2)) ** 0.5 / 2.355 for s in old_sp]
    smooth = sitk.SmoothingRecursiveGaussian(image, sigma) if max(sigma) > 0 else image
    size = [max(4, int(round(n * s / spacing_mm))) for n, s in zip(image.GetSize(), old_sp, strict=True)]
    return sitk.Resample(smooth, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(),
                         [spacing_mm] * 3, image.GetDirection(), 0.0, sitk.sitkFloat32)


def _foreground(image: sitk.Image) -> sitk.Image:
    """Brain/head foreground of a registration image: non-zero if the background is exactly zero, else Otsu."""
    arr = sitk.GetArrayViewFromImage(image)
    nz = arr != 0
    if 0 < nz.mean() < 0.95:
        m = sitk.GetImageFromArray(nz.astype(np.uint8))
        m.CopyInformation(image)
        return m
    return sitk.OtsuThreshold(image, 0, 1)


def similarity(subject: sitk.Image, template: sitk.Image, transform: sitk.Transform,
               subject_mask: sitk.Image | None = None) -> tuple[float, float]:
    """(NCC, brain Dice) with the template warped onto the subject.

    NCC is taken inside the warped template's brain (template > 10% of its 99th percentile): the template
    is skull-stripped, so comparing it with a subject's skull and scalp would only measure the head.
    Dice compares that brain with the subject's foreground (meaningful for skull-stripped subjects; with a
    head it is lower and only a gross-failure check).
    """
    subject = sitk.Cast(subject, sitk.sitkFloat32)
    warped = sitk.Resample(sitk.Cast(template, sitk.sitkFloat32), subject, transform, sitk.sitkLinear, 0.0)
    s = sitk.GetArrayViewFromImage(subject)
    w = sitk.GetArrayViewFromImage(warped)
    fg = sitk.GetArrayViewFromImage(subject_mask if subject_mask is not None else _foreground(subject)) > 0
    if not (w > 0).any() or fg.sum() < 10:
        return 0.0, 0.0
    tmask = w > 0.1 * float(np.percentile(w[w > 0], 99))
    inside = tmask & fg
    if inside.sum() < 10:
        return 0.0, 0.0
    a, b = s[inside].astype(np.float64), w[inside].astype(np.float64)
    a -= a.mean()
    b -= b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    ncc = float((a * b).sum() / denom) if denom > 0 else 0.0
    dice = float(2 * inside.sum() / (fg.sum() + tmask.sum()))
    return ncc, dice


def grade(ncc: float, dice: float) -> str:
    """'good' | 'poor' | 'failed' from the thresholds in the module docstring."""
    if dice < MIN_DICE:
        return "failed"
    if ncc >= GOOD_NCC:
        return "good"
    return "poor" if ncc >= POOR_NCC else "failed"


def register_to_template(
    subject: sitk.Image,
    template: sitk.Image,
    *,
    seed: int = 0,
    working_spacing_mm: float = 2.0,
    sampling: float = 0.15,
    iterations: int = 200,
) -> Registration:
    """Affine subject -> template registration (see module docstring); never raises on poor convergence.

    Args:
        subject: 3D scalar SimpleITK image (first channel of the scan).
        template: 3D T1 template in MNI space.
        seed: seed of the metric's random sampling (the result is reproducible for a given seed).
        working_spacing_mm: both images are smoothed and resampled to this spacing first (speed).
        sampling: share of fixed-image voxels sampled per metric evaluation.
        iterations: per stage.
    """
    if subject.GetDimension() != 3:
        raise InputError("registration to MNI needs a 3D image; 2D images cannot be named with a brain atlas")
    t0 = time.perf_counter()
    fixed = _isotropic(subject, working_spacing_mm)
    moving = _isotropic(template, working_spacing_mm)
    fixed_mask = _foreground(fixed)
    init = sitk.CenteredTransformInitializer(
        sitk.Cast(fixed_mask, sitk.sitkFloat32), sitk.Cast(_foreground(moving), sitk.sitkFloat32),
        sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS,
    )

    def run(initial: sitk.Transform, shrink: list[int], smooth: list[float]) -> tuple[sitk.Transform, float]:
        reg = sitk.ImageRegistrationMethod()
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentage(sampling, seed)
        reg.SetMetricFixedMask(fixed_mask)
        reg.SetInterpolator(sitk.sitkLinear)
        reg.SetOptimizerAsRegularStepGradientDescent(
            learningRate=1.0, minStep=1e-3, numberOfIterations=iterations, relaxationFactor=0.6,
            gradientMagnitudeTolerance=1e-6,
        )
        reg.SetOptimizerScalesFromPhysicalShift()
        reg.SetShrinkFactorsPerLevel(shrink)
        reg.SetSmoothingSigmasPerLevel(smooth)
        reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
        reg.SetInitialTransform(initial, inPlace=False)
        out = reg.Execute(fixed, moving)
        return out, float(reg.GetMetricValue())

    try:
        rigid, _ = run(init, [4, 2], [4.0, 2.0])
        rigid = sitk.Euler3DTransform(rigid.GetNthTransform(0)) if isinstance(rigid, sitk.CompositeTransform) \
            else rigid
        affine0 = sitk.AffineTransform(3)
        affine0.SetMatrix(rigid.GetMatrix())
        affine0.SetTranslation(rigid.GetTranslation())
        affine0.SetCenter(rigid.GetCenter())
        affine, mi = run(affine0, [2, 1], [2.0, 0.0])
        if isinstance(affine, sitk.CompositeTransform):
            affine = affine.GetNthTransform(0)
        affine = sitk.AffineTransform(affine)
    except RuntimeError as exc:  # ITK raises e.g. "too many samples map outside moving image buffer"
        return Registration(None, "failed", 0.0, 0.0, None, time.perf_counter() - t0,
                            f"registration did not converge ({str(exc).strip().splitlines()[-1][:120]})")
    det = float(np.linalg.det(np.array(affine.GetMatrix()).reshape(3, 3)))
    ncc, dice = similarity(fixed, moving, affine, fixed_mask)
    quality = grade(ncc, dice)
    message = ""
    if not 0.5 <= det <= 2.0:
        quality, message = "failed", f"registration gave an implausible volume scale ({det:.2f})"
    elif quality == "poor":
        message = (f"registration to MNI is poor (NCC {ncc:.2f}, brain Dice {dice:.2f}); "
                   "region names may be off by a few millimetres or more")
    elif quality == "failed":
        message = (f"registration to MNI failed (NCC {ncc:.2f}, brain Dice {dice:.2f}); "
                   "atlas region names were skipped")
    return Registration(affine if quality != "failed" else None, quality, ncc, dice, mi,
                        time.perf_counter() - t0, message, {"volume_scale": det})


def check_in_template_space(subject: sitk.Image, template: sitk.Image) -> Registration:
    """Is the subject already in template space? Graded with the identity transform, no optimisation.

    Only a "good" match counts (quality "identity"); anything less returns quality "failed" so the caller
    registers (or, when registration is off, refuses to name regions).
    """
    t0 = time.perf_counter()
    identity = sitk.Transform(3, sitk.sitkIdentity)
    fixed = _isotropic(subject, 2.0)
    ncc, dice = similarity(fixed, _isotropic(template, 2.0), identity, _foreground(fixed))
    quality = grade(ncc, dice)
    aligned = quality == "good"  # already in template space only if it matches as well as a registration
    return Registration(identity if aligned else None, "identity" if aligned else "failed", ncc, dice, None,
                        time.perf_counter() - t0, "" if aligned else "image is not in template space")
