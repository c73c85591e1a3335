"""What an ``/infer`` request may hold, checked at the door before any work: 4xx with a short message.

MONAI Label 0.8.5 answers a ``params`` field that is not JSON, a list, ``{"iterations": 1e400}`` (an
OverflowError later) or 100,000 nested brackets (a RecursionError) with a bare 500, and echoes a 100 kB value
back whole. Here ``params`` must be a JSON object of plain, finite values, at most `MAX_PARAMS_BYTES` long and
`MAX_DEPTH` deep (422 otherwise); the per-option checks (lib/options.py) run on what passes. Every refusal the
endpoint sends goes through `clip_detail`, so no value is echoed longer than `ECHO_CHARS` characters, whoever
wrote the message (the app, the core, MONAI Label).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from fastapi import HTTPException

#: Longest ``params`` field accepted (bytes of JSON); the app's option tables need well under 1 kB.
MAX_PARAMS_BYTES = 64 * 1024
#: Deepest nesting of lists/objects accepted in ``params`` (the Slicer client's label_info is 3 deep).
MAX_DEPTH = 8
#: Longest integer literal accepted (digits): beyond int64, no option means it.
MAX_INT_DIGITS = 19
#: Longest value echoed in a message.
ECHO_CHARS = 80


def shown(value: Any) -> str:
    """``repr(value)`` clipped to `ECHO_CHARS` characters (with the length of what was left out)."""
    text = repr(value)
    if len(text) <= ECHO_CHARS:
        return text
    return f"{text[:ECHO_CHARS - 1]}… ({len(text):,} characters)"


#: A quoted value (as repr writes it, in single or double quotes) longer than ECHO_CHARS.
_QUOTED = re.compile("|".join(rf"{q}(?:[^{q}\\]|\\.){{{ECHO_CHARS - 1},}}{q}" for q in "'\""))


def clip_detail(detail: Any) -> Any:
    """A refusal's message with every quoted value longer than `ECHO_CHARS` clipped by `shown`'s rule."""
    if not isinstance(detail, str):
        return detail
    return _QUOTED.sub(lambda match: f"{match.group(0)[:ECHO_CHARS - 1]}… ({len(match.group(0)):,} characters)",
                       detail)


_JSON_NAMES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def _refuse(reason: str) -> HTTPException:
    return HTTPException(status_code=422, detail=f"params {reason} — send a JSON object of option values, "
                         'e.g. {"levels": 5, "seed": 0} (GET /info/ lists each task\'s options)')


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:ECHO_CHARS]} is out of range")
    return value


def _short_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text):,} digits is out of range")
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _depth(value: Any) -> int:
    """Nesting depth of lists/objects (iterative: the value may be deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_params(text: str | None) -> dict[str, Any]:
    """The request's ``params`` form field as a dict; raises HTTPException 422 naming what is wrong."""
    if not text:
        return {}
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_PARAMS_BYTES:
        raise _refuse(f"is {size:,} bytes long, above the limit of {MAX_PARAMS_BYTES:,}")
    try:
        value = json.loads(text, parse_float=_finite_float, parse_int=_short_int, parse_constant=_no_constant)
    except RecursionError:
        raise _refuse(f"is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # JSONDecodeError and the hooks' out-of-range numbers
        reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
        raise _refuse(f"is not valid JSON ({reason})") from None
    if not isinstance(value, dict):
        raise _refuse(f"is a JSON {_JSON_NAMES.get(type(value), 'value')}, not an object")
    if _depth(value) > MAX_DEPTH:
        raise _refuse(f"is nested deeper than {MAX_DEPTH} levels")
    return value
