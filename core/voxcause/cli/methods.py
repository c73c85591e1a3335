"""``voxcause methods``: the explanation methods and their options with defaults, from the explainers' own
declarations (``voxcause.explainers.catalogue``).

    voxcause methods            # a table for people
    voxcause methods --json     # for programs: the Slicer module reads its panel defaults from this

The JSON object is ``{"version", "default_method", "methods": {name: {"needs_network", "options": [{"name",
"default", "help", "choices", "minimum", "maximum", "kind"}, ...]}}}``; a method whose code fails to import is listed with an ``error``
instead of options, so one broken method never hides the others.
"""

from __future__ import annotations

import argparse
import json

from ..explainers import DEFAULT_METHOD, catalogue


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``methods`` command on ``subparsers``."""
    parser = subparsers.add_parser(
        "methods",
        help="list the explanation methods and their options with defaults (--json for programs)",
        description="List every method `voxcause explain --method` accepts, with its options, their defaults and "
        "accepted values, as the methods declare them.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object (for programs)")
    return parser


def describe_methods() -> dict:
    """The ``voxcause methods --json`` object (see the module docstring)."""
    from .._version import __version__

    return {"version": __version__, "default_method": DEFAULT_METHOD, "methods": catalogue()}


def run(args: argparse.Namespace) -> int:
    described = describe_methods()
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    for name, entry in described["methods"].items():
        marker = " (default)" if name == described["default_method"] else ""
        if "error" in entry:
            print(f"{name}{marker}: unavailable ({entry['error']})")
            continue
        network = " — needs a network with named layers" if entry["needs_network"] else ""
        print(f"{name}{marker}{network}")
        for option in entry["options"]:
            choices = f" [{' | '.join(option['choices'])}]" if option["choices"] else ""
            low, high = option["minimum"], option["maximum"]
            bounds = "" if low is None and high is None else f" ({'' if low is None else low}..{'' if high is None else high})"
            print(f"  {option['name']} = {option['default']}{choices}{bounds}: {option['help']}")
    return 0
