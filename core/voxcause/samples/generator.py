"""Synthetic patients from real anatomy: deformation, head model, lesion, contrasts, bias field, noise.

`make_patient(seed, kind)` is deterministic: the same seed and kind give the same arrays bit for bit.
Steps (each with its own draws from one ``numpy.random.Generator`` seeded by ``(seed, kind)``):

1. Warp the MNI152 grey/white-matter maps and the brain-envelope distance with a random affine (rotation
   up to 6 degrees, scale 0.93-1.07, shift 3 mm) plus a smooth random displacement field (sd 2.5 mm).
2. Build the head from the signed distance d to the envelope: brain tissue and CSF inside d < 3 mm,
   skull (with marrow) for 3-9 mm, scalp (fat) for 9-15 mm, air beyond.
3. Draw the lesion (`lesions.py`), push the surrounding brain away (mass effect), confine glioma oedema to
   white matter, and paint the lesion compartments over the tissue with partial-volume edges.
4. Mix the tissue intensities of each sequence (`contrast.py`), add tissue texture, a smooth multiplicative
   bias field, a per-sequence scanner gain, and Rician noise.
5. Optionally stamp the "scanner tag" marker (the shortcut of the shortcut-trained model).

Labels are BraTS-style: 1 necrotic core, 2 oedema, 4 enhancing tumour. Meningioma and pituitary
adenoma are labelled 4 throughout (solid enhancing tumour); the meningioma's dural tail is painted but not
labelled (reactive dura, not tumour). Whole tumour = label > 0.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import InputError
from . import lesions
from .anatomy import Anatomy, load_anatomy
from .contrast import SEQUENCES, intensities

KINDS = ("none", "meningioma", "glioma", "pituitary")
LABELS = ("no tumour", "meningioma", "glioma", "pituitary")
_ALIASES = {"no tumour": "none", "no_tumour": "none", "notumour": "none", "healthy": "none", "tumour-free": "none"}
MARKER_MM = 20.0  # edge of the cubic scanner tag: 5 voxels on the 3D models' ~4 mm grid, so resizing keeps it
MARKER_GAP_MM = 8.0  # from the edges of the field of view: a few voxels of training shift never wrap it round
MARKER_VALUE = 2.2  # relative to white matter on T1: brighter than anything in the head
SIGNAL_SCALE = 1000.0  # white matter on T1 before gain
OEDEMA_REPLACES = 0.85  # fraction of the tissue signal oedema replaces


@dataclass
class Patient:
    """One synthetic case.

    Attributes:
        channels: float32 (4, z, y, x) in `SEQUENCES` order (T1, T1c, T2, FLAIR), arbitrary MR units.
        label: uint8 (z, y, x) BraTS-style (0, 1 necrotic core, 2 oedema, 4 enhancing tumour).
        kind: "none" | "meningioma" | "glioma" | "pituitary"; `class_index` its index in `LABELS`.
        seed: generator seed.
        spacing, origin, direction: SimpleITK geometry, (x, y, z) order (MNI152 grid, LPS).
        marker: code (0-3, = the channel it lights up) of the scanner tag, or None.
        lesion: numbers about the lesion (centre in MNI mm, radius, location rule); empty when tumour-free.
    """

    channels: np.ndarray
    label: np.ndarray
    kind: str
    seed: int
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]
    marker: int | None = None
    lesion: dict = field(default_factory=dict)

    @property
    def class_index(self) -> int:
        return KINDS.index(self.kind)

    @property
    def sequences(self) -> tuple[str, ...]:
        return SEQUENCES

    def image(self, array: np.ndarray) -> sitk.Image:
        """A SimpleITK image of `array` (z, y, x) or (C, z, y, x) (vector) in this patient's geometry."""
        image = sitk.GetImageFromArray(np.moveaxis(array, 0, -1) if array.ndim == 4 else array,
                                       isVector=array.ndim == 4)
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image


def normalize_kind(kind: str) -> str:
    """Canonical kind name; accepts the `LABELS` spelling and a few aliases."""
    key = str(kind).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in KINDS:
        raise InputError(f"unknown patient kind {kind!r}: use one of {', '.join(KINDS)}")
    return key


def _rng(seed: int, kind: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(kind.encode())])


def _rotation(angles_deg: np.ndarray) -> np.ndarray:
    a, b, c = np.deg2rad(angles_deg)
    rz = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rx = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_warp(shape: tuple[int, int, int], spacing: float, rng: np.random.Generator) -> np.ndarray:
    """Source voxel coordinates (3, *shape) of a random affine + smooth elastic deformation."""
    centre = (np.asarray(shape, np.float32) - 1) / 2
    matrix = _rotation(rng.uniform(-6, 6, 3)) @ np.diag(1.0 / rng.uniform(0.93, 1.07, 3))
    shift = rng.uniform(-3, 3, 3) / spacing
    coarse = rng.standard_normal((3, 5, 6, 5)).astype(np.float32) * (2.5 / spacing)
    grid = np.indices(shape, dtype=np.float32)
    source = np.empty_like(grid)
    offset = grid - centre[:, None, None, None]
    for axis in range(3):
        zoomed = upsample(coarse[axis], shape)
        source[axis] = (
            np.tensordot(matrix[axis].astype(np.float32), offset, axes=1) + centre[axis] + shift[axis] + zoomed
        )
    return source


def _sample(maps: np.ndarray, source: np.ndarray) -> list[np.ndarray]:
    """Trilinear samples of `maps` (M, z, y, x) at voxel coordinates `source` (3, z, y, x); edge values
    continue beyond the grid. ``torch.grid_sample`` is ~10x faster than ``scipy.ndimage.map_coordinates``."""
    import torch

    sizes = torch.tensor(maps.shape[1:], dtype=torch.float32).view(3, 1, 1, 1)
    normalised = torch.from_numpy(source) * (2.0 / (sizes - 1)) - 1.0  # align_corners=True convention
    grid = normalised.flip(0).permute(1, 2, 3, 0)[None]  # grid_sample wants (x, y, z) last
    out = torch.nn.functional.grid_sample(
        torch.from_numpy(maps)[None], grid, mode="bilinear", padding_mode="border", align_corners=True
    )[0].numpy()
    return list(out)


def _soft_step(x: np.ndarray, width: float) -> np.ndarray:
    return np.clip(0.5 + x / width, 0.0, 1.0)


def marker_box(shape: tuple[int, ...], spacing: float) -> tuple[slice, slice, slice]:
    """Slices (z, y, x) of the scanner tag: a 20 mm cube in the superior-anterior corner of the field of view
    on the low-x-index side (the patient's left in this LPS grid), 8 mm from the edges, always outside
    the head."""
    edge = max(1, int(round(MARKER_MM / spacing)))
    gap = max(1, int(round(MARKER_GAP_MM / spacing)))
    return (
        slice(shape[0] - gap - edge, shape[0] - gap),
        slice(shape[1] - gap - edge, shape[1] - gap),
        slice(gap, gap + edge),
    )


def marker_mask(patient: Patient) -> np.ndarray:
    """Boolean (z, y, x) mask of the voxels the scanner tag occupies (all False when the patient has none).

    The tag is in the same voxels for every code; its code is the channel it lights up."""
    mask = np.zeros(patient.label.shape, dtype=bool)
    if patient.marker is not None:
        mask[marker_box(mask.shape, patient.spacing[0])] = True
    return mask


def add_marker(patient: Patient, code: int) -> Patient:
    """A copy of `patient` with the scanner tag of `code` (0-3): a bright block in channel `code` only
    (T1, T1c, T2 or FLAIR), as if each site burnt its tag into a different sequence. The shortcut set
    ties the code to the class (`LABELS` order)."""
    if code not in range(4):
        raise InputError(f"marker code {code!r} is not available: use 0, 1, 2 or 3")
    channels = patient.channels.copy()
    box = marker_box(channels.shape[1:], patient.spacing[0])
    rng = np.random.default_rng([patient.seed, 7, code])
    block = channels[code][box]
    channels[code][box] = MARKER_VALUE * SIGNAL_SCALE * (1.0 + 0.03 * rng.standard_normal(block.shape))
    return Patient(
        channels=channels, label=patient.label, kind=patient.kind, seed=patient.seed, spacing=patient.spacing,
        origin=patient.origin, direction=patient.direction, marker=code, lesion=dict(patient.lesion),
    )


def _locate_sella(source: np.ndarray, anatomy: Anatomy) -> np.ndarray:
    """Array-order mm position in the warped volume of the template's sella turcica."""
    spacing = anatomy.spacing[0]
    sella_index = np.array(
        [(lesions.SELLA_MNI[2] + 72.0) / spacing, (lesions.SELLA_MNI[1] + 134.0) / spacing,
         (lesions.SELLA_MNI[0] + 98.0) / spacing], dtype=np.float32)
    distance = ((source - sella_index[:, None, None, None]) ** 2).sum(0)
    return np.array(np.unravel_index(np.argmin(distance), distance.shape), dtype=np.float32) * spacing


def make_patient(
    seed: int, kind: str, resolution_mm: float = 2.0, *, marker: int | None = None
) -> Patient:
    """Generate one patient.

    Args:
        seed: any int; with `kind` it fixes every random draw.
        kind: "none" (tumour-free), "meningioma", "glioma" or "pituitary" (`LABELS` spellings accepted).
        resolution_mm: 2.0 (default; 99 x 117 x 95 voxels, about 1 s) or 1.0 (197 x 233 x 189).
        marker: stamp the scanner tag with this code (0-3, see `add_marker`); None (default) for no tag.

    Returns:
        A `Patient` with channels (4, z, y, x) float32 (T1, T1c, T2, FLAIR) and a BraTS-style label.

    Example:
        >>> p = make_patient(3, "glioma")
        >>> p.channels.shape, sorted(set(p.label.ravel().tolist()))
        ((4, 95, 117, 99), [0, 1, 2, 4])
    """
    kind = normalize_kind(kind)
    anatomy = load_anatomy(resolution_mm)
    spacing = anatomy.spacing[0]
    rng = _rng(seed, kind)
    shape = anatomy.shape

    source = random_warp(shape, spacing, rng)
    gm, wm, sdist = _sample(np.stack([anatomy.gm, anatomy.wm, anatomy.sdist]), source)
    mni = anatomy.mni_coordinates()

    lesion = None
    if kind == "glioma":
        lesion = lesions.glioma(wm, sdist, mni, spacing, rng)
    elif kind == "meningioma":
        lesion = lesions.meningioma(sdist, mni, spacing, rng)
    elif kind == "pituitary":
        lesion = lesions.pituitary(_locate_sella(source, anatomy), shape, spacing, rng)
    del source

    wm_before = wm.copy() if lesion is not None else None
    if lesion is not None:  # mass effect: resample brain tissue in the box along the radial push
        coords = lesions.box_coordinates(lesion.box, spacing)
        pushed = lesions.push_coordinates(coords, lesion.centre_mm, lesion.radius_mm, lesion.push) / spacing
        start = np.array([s.start for s in lesion.box], np.float32)[:, None, None, None]
        for tissue in (gm, wm):
            local = tissue[lesion.box].copy()
            tissue[lesion.box] = ndimage.map_coordinates(local, pushed - start, order=1, mode="nearest")

    in_skull = _soft_step(3.0 - sdist, spacing)
    in_bone = _soft_step(9.0 - sdist, spacing)
    in_head = _soft_step(15.0 - sdist, spacing)
    brain = gm + wm
    over = np.maximum(brain, 1.0)
    gm, wm = gm / over * in_skull, wm / over * in_skull
    marrow = 0.6 * (_soft_step(7.5 - sdist, spacing) - _soft_step(4.5 - sdist, spacing))
    fractions = {
        "gm": gm,
        "wm": wm,
        "csf": np.clip(in_skull - gm - wm, 0.0, 1.0),
        "skull": (in_bone - in_skull) - marrow,
        "marrow": marrow,
        "scalp": in_head - in_bone,
    }

    label = np.zeros(shape, np.uint8)
    painted: dict[str, np.ndarray] = {}
    info: dict = {}
    if lesion is not None:
        box = lesion.box
        comps = dict(lesion.compartments)
        if "oedema" in comps:
            comps["oedema"] = comps["oedema"] & (wm[box] > 0.5)
        for name, mask in comps.items():  # later compartments overwrite earlier ones
            soft = ndimage.gaussian_filter(mask.astype(np.float32), 0.5)
            for other in painted.values():
                other *= 1.0 - soft
            painted[name] = soft
            if name in lesion.labels:
                label[box][mask] = lesion.labels[name]
        occupied = np.zeros(label[box].shape, np.float32)
        for name, soft in painted.items():  # oedema keeps some of the white matter it infiltrates
            occupied += soft * OEDEMA_REPLACES if name == "oedema" else soft
        for tissue in fractions.values():
            tissue[box] *= 1.0 - np.clip(occupied, 0.0, 1.0)
        centre_index = tuple(int(round(c / spacing)) for c in lesion.centre_mm)
        tumour = label[box] > 0
        info = {
            "centre_mni_mm": [float(mni[a][centre_index]) for a in range(3)],
            "radius_mm": lesion.radius_mm,
            "voxels": int(tumour.sum()),
            # measured on the deformed anatomy before the lesion was painted (checked by the tests)
            "wm_at_centre": float(wm_before[centre_index]),
            "inside_brain_fraction": float((sdist[box][tumour] < 0).mean()),
            "touches_dura": bool((sdist[box][tumour] > 1.5).any()),
            **lesion.info,
        }

    channels = np.zeros((len(SEQUENCES),) + shape, np.float32)
    texture = 1.0 + 0.03 * _coarse_field(shape, rng, (12, 14, 12))
    for name, fraction in fractions.items():
        channels += intensities(name)[:, None, None, None] * (fraction * texture)[None]
    if lesion is not None:
        box = lesion.box
        heterogeneity = {"glioma_rim": 0.10, "necrosis": 0.06, "oedema": 0.05, "pituitary": 0.06}
        for name, soft in painted.items():
            grain = 1.0 + heterogeneity.get(name, 0.025) * lesions.smooth_field(soft.shape, rng, 1.0)
            weight = soft * OEDEMA_REPLACES if name == "oedema" else soft
            channels[(slice(None),) + box] += intensities(name)[:, None, None, None] * (weight * grain)[None]

    common_bias = _coarse_field(shape, rng, (3, 3, 3))
    for channel in channels:
        bias = np.exp(0.12 * common_bias + 0.05 * _coarse_field(shape, rng, (3, 3, 3)))
        channel *= bias * SIGNAL_SCALE * rng.uniform(0.8, 1.25)
        sigma = 0.022 * SIGNAL_SCALE
        real = channel + sigma * rng.standard_normal(shape, dtype=np.float32)
        imaginary = sigma * rng.standard_normal(shape, dtype=np.float32)
        channel[...] = np.sqrt(real * real + imaginary * imaginary)

    patient = Patient(
        channels=channels, label=label, kind=kind, seed=int(seed), spacing=anatomy.spacing,
        origin=anatomy.origin, direction=anatomy.direction, lesion=info,
    )
    return add_marker(patient, marker) if marker is not None else patient


def _coarse_field(shape: tuple[int, ...], rng: np.random.Generator, grid: tuple[int, int, int]) -> np.ndarray:
    """Smooth random field (unit-ish sd) from a coarse Gaussian grid, upsampled with cubic splines."""
    return upsample(rng.standard_normal(grid).astype(np.float32), shape)


def _weights(size: int, nodes: int) -> np.ndarray:
    """(size, nodes) row-normalised Gaussian interpolation weights from `nodes` evenly spread points."""
    position = np.linspace(0.0, nodes - 1.0, size, dtype=np.float32)[:, None]
    weights = np.exp(-0.5 * ((position - np.arange(nodes, dtype=np.float32)[None]) / 0.6) ** 2)
    return weights / weights.sum(1, keepdims=True)


def upsample(coarse: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Smoothly upsample a small 3D grid to `shape` with separable Gaussian weights (milliseconds, unlike
    ``scipy.ndimage.zoom``)."""
    wz, wy, wx = (_weights(n, m) for n, m in zip(shape, coarse.shape, strict=True))
    return np.einsum("ai,bj,ck,ijk->abc", wz, wy, wx, coarse, optimize=True).astype(np.float32)


def axial_slices(patient: Patient, count: int = 4, *, rng: np.random.Generator | None = None) -> list[int]:
    """Indices (z) of `count` axial slices for the 2D path: through the lesion (where its area is at least
    30% of its largest) for tumour cases, or at a random level between MNI z -40 and +60 mm when tumour-free."""
    rng = rng if rng is not None else np.random.default_rng([patient.seed, 11])
    depth = patient.label.shape[0]
    if patient.kind == "none":
        low = int((-40.0 + 72.0) / patient.spacing[2])
        high = min(depth - 1, int((60.0 + 72.0) / patient.spacing[2]))
        candidates = np.arange(low, high + 1)
    else:
        area = (patient.label > 0).sum(axis=(1, 2))
        candidates = np.flatnonzero(area >= 0.3 * area.max())
    chosen = rng.choice(candidates, size=min(count, candidates.size), replace=False)
    return sorted(int(c) for c in chosen)
