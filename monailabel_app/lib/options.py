"""Task options: what the Slicer client shows as an options table, and the checks a request must pass.

An infer task's ``config()`` is the options table: a list becomes a combo box (first item = default), an
int a text field, a bool a check box. MONAI Label merges that table into every request before the user's
own values, so a value may arrive as the whole list (nothing chosen), as a string typed into the table, or
as a JSON number. `OptionTable.parse` turns a request into typed values and raises `InputError` (the app
answers 422) naming the option, the bad value and what would be accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from voxcause.errors import InputError
from voxcause.explainers import declared_options
from voxcause.options import Option as CoreOption


@dataclass(frozen=True)
class Choice:
    """An option whose value is one of ``choices`` (the first is the default)."""

    name: str
    choices: tuple[str, ...]
    help: str = ""

    def table_value(self) -> list[str]:
        return list(self.choices)

    def parse(self, raw: Any) -> str:
        if isinstance(raw, list | tuple):
            raw = raw[0] if raw else self.choices[0]
        value = str(raw).strip()
        if value not in self.choices:
            raise InputError(
                f"option {self.name}={raw!r} is not one of {', '.join(self.choices)} — pick one of those"
            )
        return value


@dataclass(frozen=True)
class Integer:
    """An integer option within ``low..high``."""

    name: str
    default: int
    low: int
    high: int
    help: str = ""

    def table_value(self) -> int:
        return self.default

    def parse(self, raw: Any) -> int:
        if isinstance(raw, list | tuple):
            raw = raw[0] if raw else self.default
        if isinstance(raw, bool):
            raise InputError(
                f"option {self.name}={raw!r} is not an integer — pass a whole number {self.low}..{self.high}"
            )
        if isinstance(raw, str):
            raw = raw.strip()
            if raw == "":
                return self.default
        try:
            value = int(raw)
            if isinstance(raw, float) and raw != value:
                raise ValueError
        except (TypeError, ValueError):
            raise InputError(
                f"option {self.name}={raw!r} is not an integer — pass a whole number {self.low}..{self.high}"
            ) from None
        if not self.low <= value <= self.high:
            raise InputError(
                f"option {self.name}={value} is outside {self.low}..{self.high} — pass a value in that range"
            )
        return value


Option = Choice | Integer


class OptionTable:
    """The options of one task, in the order the client shows them."""

    def __init__(self, options: Sequence[Option]) -> None:
        self.options = list(options)

    def config(self) -> dict[str, Any]:
        """The ``config`` block of the task's /info entry."""
        return {option.name: option.table_value() for option in self.options}

    def parse(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Typed values for every option; defaults for those the request leaves out."""
        return {option.name: option.parse(request.get(option.name, option.table_value())) for option in self.options}


def target_choices(*label_lists: Sequence[str]) -> tuple[str, ...]:
    """``auto`` followed by every non-background label of the given models, each once."""
    seen: list[str] = ["auto"]
    for labels in label_lists:
        for label in labels:
            if label.lower() != "background" and label not in seen:
                seen.append(label)
    return tuple(seen)


def declared_option(method: str, name: str) -> CoreOption:
    """The core's declaration of ``method``'s option ``name`` (default, bounds, help: `voxcause.options`)."""
    return next(option for option in declared_options(method) if option.name == name)


def declared_integer(method: str, name: str, default: int | None = None) -> Integer:
    """An integer option with the core's bounds and help (the default may be the app's setting)."""
    option = declared_option(method, name)
    return Integer(name, option.default if default is None else default, int(option.minimum), int(option.maximum),
                   option.help)


def levels_option(default: int) -> Integer:
    return Integer("levels", default, 1, 10, "number of heat levels drawn (1..10)")


def seed_option() -> Integer:
    """The core's seed (every method that draws at random declares the same one)."""
    return declared_integer("rex", "seed")


#: Name of the option choosing the model (MONAI Label's request already uses ``model`` for the task name).
MODEL_OPTION = "explained_model"


def model_option(roles: Sequence[str]) -> Choice:
    return Choice(
        MODEL_OPTION, tuple(roles), "which model is explained: the segmenter's region or the classifier's class"
    )


def target_option(*label_lists: Sequence[str]) -> Choice:
    return Choice("target", target_choices(*label_lists),
                  "label explained; auto = the predicted class (largest predicted region for the segmenter)")
