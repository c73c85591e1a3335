"""Tissue intensities of the four sequences (T1, T1c, T2, FLAIR), relative to white matter on T1.

Values follow the textbook appearance at 1.5-3 T: on T1 white matter is brighter than grey matter and CSF is
dark; on T2 CSF is brightest; FLAIR suppresses CSF and shows oedema brightest; gadolinium (T1c) lights up
meningioma, the rim of a glioblastoma and (less) a pituitary adenoma, while necrosis stays dark.
Each entry is (T1, T1c, T2, FLAIR).
"""

from __future__ import annotations

import numpy as np

SEQUENCES = ("T1", "T1c", "T2", "FLAIR")

TISSUE = {
    "wm": (1.00, 1.00, 0.42, 0.58),
    "gm": (0.66, 0.68, 0.66, 0.80),
    "csf": (0.16, 0.16, 1.00, 0.07),
    "skull": (0.07, 0.07, 0.06, 0.06),
    "marrow": (0.75, 0.75, 0.45, 0.55),
    "scalp": (1.10, 1.10, 0.72, 0.80),
}

LESION = {
    # glioma (glioblastoma-like): enhancing rim, necrotic core, vasogenic oedema
    "glioma_rim": (0.58, 1.45, 0.74, 0.88),
    "necrosis": (0.28, 0.30, 1.02, 0.62),
    "oedema": (0.58, 0.60, 0.92, 1.12),
    # meningioma: iso-/hypointense to grey matter on T1, vivid homogeneous enhancement
    "meningioma": (0.62, 1.42, 0.70, 0.78),
    "dural_tail": (0.30, 1.10, 0.40, 0.45),
    # pituitary macroadenoma: isointense on T1, moderate (heterogeneous) enhancement
    "pituitary": (0.64, 1.12, 0.74, 0.78),
}


def intensities(name: str) -> np.ndarray:
    """The (4,) float32 intensity vector of a tissue or lesion compartment."""
    table = TISSUE if name in TISSUE else LESION
    return np.asarray(table[name], dtype=np.float32)
