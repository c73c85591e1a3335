"""Explainer options, declared once: a frozen dataclass per explainer whose fields carry default, help,
choices and bounds.

Each explainer names its option class (``Explainer.options``)::

    @dataclass(frozen=True)
    class OcclusionOptions(Options):
        cell: int | tuple[int, ...] | None = option(None, "grid cell size in voxels", kind="ints", minimum=1)
        batch_size: int = option(16, "occluded copies per forward call", minimum=1)

and everything else reads that one declaration: the explainer's constructor (``Options.build`` checks and
coerces the user's values, raising an `InputError` with code ``bad_option``), ``params()``, the catalogue
(``voxcause methods --json``, which the Slicer panel reads), the command-line flags of ``voxcause explain``
(generated, with `Option.parse` turning their text into values), the MONAI Label options table (bounds and help
from `Option`) and the tests that check the front ends against it. An option's default, bounds and help are
written in its ``option(...)`` call and nowhere else; options two explainers share are written once as a
function returning the field (`seed_option`, `layer_option`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .errors import ErrorCode, InputError

#: What a value may be: ``int``/``float``/``str``/``bool``; ``ints``: one integer or one per spatial axis;
#: ``strs``: a tuple of strings (a comma-separated list on the command line); ``number_or_choice``: one of
#: ``choices`` or a number; ``any``: a value the caller supplies (a tensor, a spacing), not checked.
KINDS = ("int", "float", "str", "bool", "ints", "strs", "number_or_choice", "any")


@dataclasses.dataclass(frozen=True)
class Option:
    """One declared option, as the catalogue and the front ends see it (read from an `Options` field).

    Attributes:
        name: keyword of the explainer (``snake_case``; the command line spells it ``--kebab-case``).
        default: the value when the user sets none (None: the method chooses, e.g. from the image size).
        help: one line for the command line, the Slicer tooltip and the MONAI Label catalogue.
        choices: the accepted strings, where the option is a choice (for ``strs``: the accepted items).
        minimum, maximum: inclusive bounds of a number (of every item of ``ints``); None: unbounded.
        kind: one of `KINDS`.
        supplied: filled in by ``voxcause.explain`` (``seed``, ``spacing``, ``context``), not set by the user.
    """

    name: str
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    kind: str = "any"
    supplied: bool = False

    def describe(self) -> dict:
        """A JSON-safe description (the catalogue entry)."""
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        return {"name": self.name, "default": default, "help": self.help, "choices": self.choices,
                "minimum": self.minimum, "maximum": self.maximum, "kind": self.kind}

    def parse(self, text: str) -> Any:
        """A command-line string as this option's value (checked later by `check`)."""
        text = text.strip()
        try:
            if self.kind == "int":
                return int(text)
            if self.kind == "float":
                return float(text)
            if self.kind == "bool":
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                return text.lower() in ("true", "1", "yes")
            if self.kind == "ints":
                values = tuple(int(part) for part in text.split(",") if part.strip())
                return values[0] if len(values) == 1 else values
            if self.kind == "strs":
                return tuple(part.strip() for part in text.split(",") if part.strip())
        except ValueError:
            raise self._error(text, f"is not {self._expected()}") from None
        if self.kind == "number_or_choice" and text not in (self.choices or ()):
            try:
                return float(text)
            except ValueError:
                raise self._error(text, f"is not {self._expected()}") from None
        return text

    def check(self, value: Any) -> Any:
        """``value`` coerced to this option's kind, or an `InputError` (code ``bad_option``) naming the fix."""
        if value is None or self.kind == "any":
            return value
        if self.kind in ("int", "float"):
            number = self._number(value)
            return self._bounded(int(number) if self.kind == "int" else float(number))
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise self._error(value, f"is not {self._expected()}")
            return value
        if self.kind == "ints":
            items = value if isinstance(value, tuple | list) else (value,)
            checked = tuple(self._bounded(int(self._number(item))) for item in items)
            return checked if isinstance(value, tuple | list) else checked[0]
        if self.kind == "strs":
            items = (value,) if isinstance(value, str) else tuple(value)
            for item in items:
                self._choice(item)
            return items
        if self.kind == "number_or_choice" and not isinstance(value, str):
            return float(self._number(value))
        return self._choice(value)

    # -- the pieces of `check` ------------------------------------------------------------------------------
    def _number(self, value: Any) -> float:
        whole = self.kind in ("int", "ints")
        if isinstance(value, bool) or not isinstance(value, int | float) or (whole and value != int(value)):
            raise self._error(value, f"is not {self._expected()}")
        return value

    def _bounded(self, value: float) -> float:
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise self._error(value, f"is outside {self.bounds_text()}")
        return value

    def _choice(self, value: Any) -> str:
        if not isinstance(value, str) or (self.choices is not None and value not in self.choices):
            raise self._error(value, f"is not {self._expected()}")
        return value

    def bounds_text(self) -> str:
        """The bounds as people write them: ``1..500``, ``>= 0``."""
        low = "" if self.minimum is None else f"{self.minimum:g}"
        high = "" if self.maximum is None else f"{self.maximum:g}"
        return f"{low}..{high}" if low and high else (f">= {low}" if low else f"<= {high}")

    def _expected(self) -> str:
        bounds = "" if self.minimum is None and self.maximum is None else self.bounds_text()
        bounds = f" in {bounds}" if ".." in bounds else f" {bounds}" if bounds else ""
        choices = ", ".join(self.choices or ())
        return {
            "int": f"a whole number{bounds}",
            "float": f"a number{bounds}",
            "bool": "true or false",
            "ints": f"a whole number{bounds} or one per axis (e.g. 8 or 8,8,4)",
            "strs": f"a comma-separated list of {choices}",
            "number_or_choice": f"one of {choices} or a number",
        }.get(self.kind, f"one of {choices}" if choices else "text")

    def _error(self, value: Any, problem: str) -> InputError:
        return InputError(f"option {self.name}={value!r} {problem} — pass {self._expected()}", code=ErrorCode.BAD_OPTION)


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    kind: str | None = None,
    supplied: bool = False,
) -> Any:
    """Declare one field of an `Options` dataclass; ``kind`` defaults to the default's type (``any``, unchecked,
    for a None default)."""
    if kind is None:
        kind = {bool: "bool", int: "int", float: "float", str: "str", tuple: "strs"}.get(type(default), "any")
    if kind not in KINDS:
        raise ValueError(f"unknown option kind {kind!r}")
    spec = Option("", default, help, choices, minimum, maximum, kind, supplied)
    return dataclasses.field(default=default, metadata={"option": spec})


@dataclasses.dataclass(frozen=True)
class Options:
    """Base of every explainer's option dataclass: checks and coerces each field on construction."""

    def __post_init__(self) -> None:
        for declared in self.declared():
            object.__setattr__(self, declared.name, declared.check(getattr(self, declared.name)))

    @classmethod
    def declared(cls) -> tuple[Option, ...]:
        """Every field as an `Option`, in declaration order."""
        return tuple(dataclasses.replace(field.metadata["option"], name=field.name) for field in dataclasses.fields(cls))

    @classmethod
    def build(cls, method: str, values: dict[str, Any]) -> Options:
        """The options of ``method`` from keyword values; an unknown name is an `InputError` naming the known ones."""
        declared = cls.declared()
        unknown = sorted(set(values) - {option.name for option in declared})
        if unknown:
            accepted = ", ".join(option.name for option in declared if not option.supplied) or "none"
            raise InputError(f"method {method!r} has no option(s) {', '.join(unknown)} — its options are {accepted}",
                             code=ErrorCode.BAD_OPTION)
        return cls(**values)

    def values(self) -> dict[str, Any]:
        """``{name: value}`` of every field."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


# -- options several explainers share, each written once ------------------------------------------------------
def seed_option() -> Any:
    return option(0, "random seed of the method's random choices", minimum=0, maximum=2**31 - 1, supplied=True)


def layer_option() -> Any:
    return option(None, "layer to compute the CAM at (default: chosen from the graph; 'list' shows them)", kind="str")
