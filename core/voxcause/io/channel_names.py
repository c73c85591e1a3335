"""Channel files in the wrong order: refused when their names say so.

A model with several input channels (T1, T1c, T2, FLAIR) takes one file per channel, in the card's order.
Shell globs sort ``case_FLAIR.nii.gz`` first; the model then scores a FLAIR image as its T1 channel and the
explanation (and its certificate) is of a different input. When a file's name names the channel of *another*
slot of the card, the run is refused with the order the card expects; ``--channel-order-checked`` lets a user
whose names mislead go on. Names that name no known channel are never refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError

#: Spellings (lower case, separators removed) of the channel names this check knows, by canonical name.
SPELLINGS = {
    "T1": ("t1", "t1w", "t1n", "t1native"),
    "T1c": ("t1c", "t1ce", "t1gd", "t1post", "t1contrast", "t1wce"),
    "T2": ("t2", "t2w"),
    "FLAIR": ("flair", "t2flair", "t2f"),
    "ADC": ("adc",),
    "DWI": ("dwi",),
    "CT": ("ct",),
    "PET": ("pet",),
}
_CANONICAL = {spelling: name for name, spellings in SPELLINGS.items() for spelling in spellings}
_SEPARATORS = re.compile(r"[^a-z0-9]+")
_IMAGE_SUFFIXES = re.compile(r"(\.(nii|nrrd|mha|mhd|dcm|png|jpe?g|tiff?|bmp))?(\.gz)?$", re.IGNORECASE)


def canonical(name: str) -> str | None:
    """The known channel a name spells (``"T1-ce"`` -> ``"T1c"``), case- and separator-insensitive, or None."""
    return _CANONICAL.get(_SEPARATORS.sub("", name.lower()))


def named_channels(path: str | Path) -> set[str]:
    """The known channels a file name names, reading its words (and each pair of adjacent words, longest first)."""
    stem = _IMAGE_SUFFIXES.sub("", Path(path).name)
    words = [word for word in _SEPARATORS.split(stem.lower()) if word]
    found: set[str] = set()
    index = 0
    while index < len(words):
        pair = _CANONICAL.get(words[index] + words[index + 1]) if index + 1 < len(words) else None
        if pair:
            found.add(pair)
            index += 2
            continue
        if words[index] in _CANONICAL:
            found.add(_CANONICAL[words[index]])
        index += 1
    return found


def check_channel_order(paths: Sequence[str | Path], channels: Sequence[str] | None) -> None:
    """Refuse channel files whose names name another slot's channel of the card (``channels``, in order)."""
    if not channels or len(paths) != len(channels) or len(paths) < 2:
        return
    slots = [canonical(str(name)) for name in channels]
    for index, path in enumerate(paths):
        named = named_channels(path)
        if not named or slots[index] in named:
            continue
        others = [slots[j] for j in range(len(slots)) if j != index and slots[j] in named]
        if others:
            raise InputError(
                f"channel file {Path(path).name} is passed as channel {index + 1} ({channels[index]}) but its name "
                f"says {others[0]} — the model expects the files in the order {', '.join(map(str, channels))}; pass "
                "them in that order (or --channel-order-checked if the names mislead)"
            )
