"""JSON for result files: the one conversion of numpy / torch / Path values to plain JSON types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays, torch tensors and paths turned into JSON types (recursively)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) or type(value).__name__ == "Tensor":  # torch without importing it
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


def dumps(data: Any) -> str:
    """``data`` as indented JSON, through `jsonable`."""
    return json.dumps(jsonable(data), indent=2)
