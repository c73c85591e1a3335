"""The app's explainer options are the core's declarations: same bounds, same help (issue 22)."""

from __future__ import annotations

import pytest
from ml_server import app_module

pytestmark = pytest.mark.monailabel


def test_iterations_and_seed_carry_the_cores_bounds_and_help():
    from voxcause.errors import InputError
    from voxcause.explainers import declared_options

    options = app_module("lib.options")
    core = {option.name: option for option in declared_options("rex")}
    iterations = options.declared_integer("rex", "iterations", 7)
    assert (iterations.default, iterations.low, iterations.high, iterations.help) == (
        7, core["iterations"].minimum, core["iterations"].maximum, core["iterations"].help)
    seed = options.seed_option()
    assert (seed.low, seed.high) == (core["seed"].minimum, core["seed"].maximum)
    with pytest.raises(InputError, match=f"outside 1..{core['iterations'].maximum}"):
        iterations.parse(core["iterations"].maximum + 1)
    settings = app_module("lib.settings")
    with pytest.raises(ValueError, match=f"default_iterations {core['iterations'].maximum + 1} is outside 1.."):
        settings.AppSettings.from_conf(".", ".", {"default_iterations": str(core["iterations"].maximum + 1)})
