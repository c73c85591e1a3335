"""The panel's defaults come from the installed core (`voxcause methods --json`), never from the panel."""

import json
import sys
import time

import pytest
from VoxCauseLib.command import LAUNCHER, MAX_ITERATIONS, ExplainRequest
from VoxCauseLib.defaults import CoreDefaults, CoreDefaultsReader, parse_methods
from VoxCauseLib.options import DEFAULT_METHOD, Method, Occlusion

CATALOGUE = {
    "version": "9.9",
    "default_method": "rex",
    "methods": {
        "rex": {
            "needs_network": False,
            "options": [
                {"name": "iterations", "default": 7, "help": "", "choices": None},
                {"name": "occlusion", "default": "blur", "help": "", "choices": ["auto", "blur"]},
            ],
        },
        "gradcam": {"needs_network": True, "options": []},
        "broken": {"error": "ImportError: no module"},
    },
}


def test_parse_methods_reads_defaults_choices_and_unavailable_methods():
    defaults = parse_methods(json.dumps(CATALOGUE))
    assert (defaults.version, defaults.iterations) == ("9.9", 7)
    assert defaults.occlusion is Occlusion.BLUR and defaults.choices["rex"]["occlusion"] == ("auto", "blur")
    assert defaults.needs_network == {"rex": False, "gradcam": True}
    assert defaults.unavailable == {"broken": "ImportError: no module"}
    assert defaults.iterations_text() == "Default (7)"
    assert CoreDefaults().iterations_text() == "Default" and CoreDefaults().occlusion is None


@pytest.mark.parametrize("text", ["", "[]", '{"methods": []}', '{"methods": {"rex": {"options": [{}]}}}'])
def test_anything_else_is_refused_in_one_line(text):
    with pytest.raises(ValueError, match="Not the output of `voxcause methods --json`") as info:
        parse_methods(text)
    assert "\n" not in str(info.value)


def test_a_core_that_cannot_answer_leaves_no_defaults_and_a_message():
    reader = CoreDefaultsReader([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"])
    assert reader.start().wait(timeout=60) is None
    assert reader.error == "voxcause methods failed (exit code 3): boom"
    missing = CoreDefaultsReader(["/no/such/python"]).start()
    assert missing.poll() is False and missing.error.startswith("Cannot ask voxcause for its defaults")


def test_the_installed_core_answers_and_the_panel_enums_match_it():
    """Against the real `voxcause methods --json`: the defaults are the explainers' own declarations."""
    explainers = pytest.importorskip("voxcause.explainers")
    reader = CoreDefaultsReader([sys.executable, "-c", LAUNCHER]).start()
    while reader.poll():
        time.sleep(0.1)
    defaults = reader.result
    assert defaults is not None, reader.error
    declared = {option.name: option.default for option in explainers.declared_options("rex")}
    assert defaults.iterations == declared["iterations"]
    bounds = {option.name: option.maximum for option in explainers.declared_options("rex")}
    assert bounds["iterations"] == MAX_ITERATIONS  # the panel's box ends where the core's bound does
    for method in Method:  # the panel sends a method only options it declares
        for name in ("iterations", "occlusion"):
            if method.sends(name):
                assert name in defaults.options[method.value], (method, name)
    assert defaults.default(Method.REX, "occlusion") == declared["occlusion"]
    assert defaults.occlusion is Occlusion(declared["occlusion"])
    for method in Method:  # every method the panel offers exists in the core
        if not method.is_counterfactual:
            assert method.value in defaults.needs_network, method
    flags = {member.value for member in Occlusion if member is not Occlusion.DEFAULT}
    assert flags <= set(defaults.choices["rex"]["occlusion"])
    # and every canvas the core offers is offered, but 'context' (it needs a healthy volume the panel cannot pick)
    assert set(defaults.choices["rex"]["occlusion"]) - {"context"} <= flags
    # the method a new request starts with is the core's default, as the core publishes it
    assert DEFAULT_METHOD.value == explainers.DEFAULT_METHOD
    assert ExplainRequest(images=(), model="m").method is DEFAULT_METHOD
