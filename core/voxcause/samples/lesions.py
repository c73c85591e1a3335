"""Lesion geometry of the three tumour types, drawn on the (already deformed) anatomy.

All functions work in a crop ("box") around the lesion, in array-order millimetres (z, y, x), so a lesion
costs a few milliseconds. Each returns a `Lesion`: boolean compartments in the box (which voxels are
tumour, core, oedema ...) plus the mass-effect parameters, so the generator can push the brain away before
painting.

Type rules (after the Figshare brain-tumour classes):
- glioma: centre in deep white matter of a cerebral hemisphere; irregular margin (radius modulated by a
  smooth random field); necrotic core with an enhancing rim; oedema within a margin around the tumour but
  only where the tissue is white matter; mass effect pushes the surroundings outwards.
- meningioma: based on the dura at the convexity (base just outside the brain envelope), a dome growing into
  the skull cavity, clipped flat at the inner table of the skull; homogeneous; pushes the brain away
  (compresses, does not infiltrate); a thin enhancing dural tail along the dura (painted, not labelled).
- pituitary: at the sella turcica, midline, ovoid with suprasellar extension upwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

SELLA_MNI = np.array([0.0, 2.0, -30.0], dtype=np.float32)  # (x, y, z) mm, centre of the sella turcica


@dataclass
class Lesion:
    """A drawn lesion in a box of the volume.

    Attributes:
        box: tuple of slices into the (z, y, x) volume.
        compartments: name -> bool array (box shape); names index `contrast.LESION`.
        labels: name -> BraTS label value (compartments without a label are painted only).
        centre_mm: lesion centre, array-order mm (z, y, x).
        radius_mm: nominal radius.
        push: mass-effect strength in [0, e]: 0 none, e pushes tissue fully out of a sphere of `radius_mm`.
        info: extra numbers recorded in the patient (location rule, sizes).
    """

    box: tuple[slice, slice, slice]
    compartments: dict[str, np.ndarray]
    labels: dict[str, int]
    centre_mm: np.ndarray
    radius_mm: float
    push: float
    info: dict = field(default_factory=dict)


def box_around(centre_mm: np.ndarray, half_mm: float, shape: tuple[int, ...], spacing: float):
    """Slices of a cube of half-width `half_mm` around `centre_mm`, clipped to the volume."""
    centre = centre_mm / spacing
    half = half_mm / spacing
    return tuple(
        slice(max(0, int(np.floor(c - half))), min(n, int(np.ceil(c + half)) + 1))
        for c, n in zip(centre, shape, strict=True)
    )


def box_coordinates(box, spacing: float) -> np.ndarray:
    """Array-order mm coordinates (3, *box_shape) of a box."""
    axes = [np.arange(s.start, s.stop, dtype=np.float32) * spacing for s in box]
    return np.stack(np.meshgrid(*axes, indexing="ij"))


def smooth_field(shape: tuple[int, ...], rng: np.random.Generator, sigma_vox: float) -> np.ndarray:
    """Smooth Gaussian random field with unit standard deviation."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_vox, mode="wrap")
    return np.clip(noise / (noise.std() + 1e-6), -2.5, 2.5)


def _pick(candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    index = np.flatnonzero(candidates)
    if index.size == 0:
        raise RuntimeError("no voxel fits the lesion's location rule")
    return np.array(np.unravel_index(rng.choice(index), candidates.shape), dtype=np.float32)


def glioma(wm: np.ndarray, sdist: np.ndarray, mni: np.ndarray, spacing: float, rng) -> Lesion:
    """Intra-axial glioma centred in hemispheric white matter."""
    radius = float(rng.uniform(10.0, 17.0))
    candidates = (
        (wm > 0.85) & (sdist < -(radius + 10.0)) & (mni[2] > -8.0) & (mni[2] < 55.0) & (np.abs(mni[0]) > 14.0)
    )
    centre = _pick(candidates, rng) * spacing
    oedema_margin = float(rng.uniform(8.0, 20.0))
    box = box_around(centre, 1.6 * (radius + oedema_margin) + 4.0, wm.shape, spacing)
    coords = box_coordinates(box, spacing)
    rho = np.sqrt(((coords - centre[:, None, None, None]) ** 2).sum(0))
    sigma = 4.0 / spacing
    shape = rho.shape
    outline = radius * (1.0 + 0.22 * smooth_field(shape, rng, sigma))
    tumour = rho < outline
    core_fraction = float(rng.uniform(0.35, 0.65))
    core = rho < outline * core_fraction * (1.0 + 0.15 * smooth_field(shape, rng, sigma))
    core &= tumour
    reach = outline + oedema_margin * np.clip(1.0 + 0.45 * smooth_field(shape, rng, 1.5 * sigma), 0.3, 1.5)
    oedema = (rho < reach) & ~tumour  # restricted to white matter after the mass effect (see generator)
    return Lesion(
        box=box,
        compartments={"oedema": oedema, "glioma_rim": tumour & ~core, "necrosis": core},
        labels={"oedema": 2, "glioma_rim": 4, "necrosis": 1},
        centre_mm=centre,
        radius_mm=radius,
        push=float(rng.uniform(0.35, 0.6)) * np.e,
        info={"rule": "intra-axial, hemispheric white matter", "oedema_margin_mm": oedema_margin},
    )


def meningioma(sdist: np.ndarray, mni: np.ndarray, spacing: float, rng) -> Lesion:
    """Extra-axial, dural-based meningioma at the convexity."""
    radius = float(rng.uniform(12.0, 20.0))
    surface = (np.abs(sdist - 1.5) < 0.6 * spacing) & (mni[2] > 5.0) & (np.abs(mni[0]) > 8.0)
    base = _pick(surface, rng) * spacing
    box = box_around(base, 2.6 * radius + 6.0, sdist.shape, spacing)
    local = sdist[box]
    gradient = np.array([g[tuple(int(round(b / spacing)) - s.start for b, s in zip(base, box, strict=True))]
                         for g in np.gradient(ndimage.gaussian_filter(local, 1.5), spacing)])
    normal = gradient / (np.linalg.norm(gradient) + 1e-6)  # points out of the brain
    centre = base - normal * 0.45 * radius
    coords = box_coordinates(box, spacing)
    offset = coords - centre[:, None, None, None]
    along = np.tensordot(normal, offset, axes=1)
    across = np.sqrt(np.maximum((offset**2).sum(0) - along**2, 0.0))
    lobes = 1.0 + 0.07 * smooth_field(along.shape, rng, 5.0 / spacing)
    tumour = ((across / radius) ** 2 + (along / (0.9 * radius)) ** 2 < lobes**2) & (local < 2.5)
    offset_base = coords - base[:, None, None, None]
    along_base = np.tensordot(normal, offset_base, axes=1)
    across_base = np.sqrt(np.maximum((offset_base**2).sum(0) - along_base**2, 0.0))
    tail = (local > 1.2) & (local < 2.8) & (across_base < 1.7 * radius) & ~tumour
    return Lesion(
        box=box,
        compartments={"dural_tail": tail, "meningioma": tumour},
        labels={"meningioma": 4},
        centre_mm=centre,
        radius_mm=radius,
        push=0.95 * np.e,
        info={"rule": "extra-axial, dural base at the convexity", "base_mm": base.tolist(),
              "normal": normal.tolist()},
    )


def pituitary(sella_mm: np.ndarray, shape: tuple[int, ...], spacing: float, rng) -> Lesion:
    """Pituitary macroadenoma in the sella turcica with suprasellar extension."""
    radius = float(rng.uniform(9.0, 13.0))
    centre = sella_mm + np.array([0.45 * radius, 0.0, 0.0], dtype=np.float32)  # upwards (z first)
    box = box_around(centre, 2.5 * radius + 4.0, shape, spacing)
    coords = box_coordinates(box, spacing)
    offset = coords - centre[:, None, None, None]
    lobes = 1.0 + 0.06 * smooth_field(offset.shape[1:], rng, 3.0 / spacing)
    scaled = (offset[0] / (1.25 * radius)) ** 2 + (offset[1] / (0.85 * radius)) ** 2 + (
        offset[2] / (0.85 * radius)
    ) ** 2
    tumour = scaled < lobes**2
    return Lesion(
        box=box,
        compartments={"pituitary": tumour},
        labels={"pituitary": 4},
        centre_mm=centre,
        radius_mm=radius,
        push=0.6 * np.e,
        info={"rule": "sella turcica, midline"},
    )


def push_coordinates(coords: np.ndarray, centre_mm: np.ndarray, radius: float, push: float) -> np.ndarray:
    """Backward radial map of a mass effect: where each box voxel's tissue came from (array-order mm).

    Source distance from the centre: rho - push * radius * exp(-rho / radius) (clipped at 0), monotonic
    in rho, so tissue is compressed outward, never folded; with push = e the tissue at the lesion's
    radius comes from the centre (pure displacement), smaller values let the lesion replace some tissue.
    """
    offset = coords - centre_mm[:, None, None, None]
    rho = np.sqrt((offset**2).sum(0)) + 1e-6
    source = np.maximum(rho - push * radius * np.exp(-rho / radius), 0.0)
    return centre_mm[:, None, None, None] + offset * (source / rho)
