"""Fakes registered like the real models, and fixtures shared by every test.

The fake embedder hashes BM25 tokens into a fixed-size vector: deterministic, fast, and good enough
that retrieval in unit tests is meaningful. The fake LLM answers from the evidence in the prompt the
way the real model is asked to (sentences with [n] markers), or follows a script a test provides.
Each fake has a real twin tested under the `model` marker.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant.answering.llm import register_llm
from assistant.evaluation.hardening import EVIDENCE_BLOCK, LexicalEmbedder
from assistant.retrieval.embedders import register_embedder

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
ARTIFACTS = ROOT / "test-artifacts"


class FakeEmbedder(LexicalEmbedder):
    """The hardening harness's lexical embedder under the tests' own name: feature-hashed BM25 tokens
    with a shared component, so cosines sit in [0.75, 1] like e5's and the gate's thresholds apply."""

    name = "fake-hash"


class FakeLLM:
    """Streams a reply. By default it copies the first sentence of evidence [1] and cites it; a test
    may set `script` to a function of the messages returning the reply text, `relevance` to the reply
    to the check before a quote, `delay_s` to slow each token, or `fail` to raise mid-stream. Counts calls and overlapping calls (for concurrency tests)."""

    def __init__(self, arg: str = "", settings=None) -> None:
        self.id = f"fake-llm:{arg}"
        self.script: Callable[[list[dict]], str] | None = None
        self.delay_s = float(arg) if arg.replace(".", "", 1).isdigit() else 0.0
        self.fail: Exception | None = None
        self.relevance = "YES"
        self.calls: list[list[dict]] = []
        self.active = 0
        self.max_active = 0
        self._guard = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(text) // 3 + 1

    def default_reply(self, messages: list[dict]) -> str:
        user = messages[-1]["content"]
        m = EVIDENCE_BLOCK.search(user)
        if not m:
            return "The policies do not say."
        body = m.group(2).strip().splitlines()
        text = " ".join(line for line in body if line and not line.startswith(("Document:", "Measure:", "文件", "措施")))
        first = re.split(r"(?<=[.。;；])\s*", text)[0].rstrip(".。;；")
        return f"{first} [{m.group(1)}]."

    def stream(self, messages, *, max_tokens, temperature, timeout_s) -> Iterator[str]:
        with self._guard:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.calls.append(messages)
        try:
            if "Reply with YES or NO only" in messages[-1]["content"]:
                reply = self.relevance  # the follow-up check before a quote
            else:
                reply = (self.script or self.default_reply)(messages)
            for i, piece in enumerate(re.findall(r"\S+\s*", reply)):
                if self.fail is not None and i == 2:
                    raise self.fail
                if self.delay_s:
                    time.sleep(self.delay_s)
                yield piece
        finally:
            with self._guard:
                self.active -= 1


FAKE_LLMS: dict[str, FakeLLM] = {}


def _fake_llm_factory(arg: str, settings) -> FakeLLM:
    llm = FakeLLM(arg)
    FAKE_LLMS[arg] = llm
    return llm


register_embedder("fake-hash", FakeEmbedder)
register_llm("fake", _fake_llm_factory)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test reads the developer's JXA_* variables or writes outside its tmp folder."""
    for key in list(os.environ):
        if key.startswith("JXA_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("JXA_DB_PATH", str(tmp_path / "records.sqlite3"))


@pytest.fixture(scope="session")
def fake_index_dir(tmp_path_factory) -> Path:
    """The seed corpus indexed with the fake embedder (built once per session)."""
    from assistant.retrieval.build import build_index

    out = tmp_path_factory.mktemp("fake-index") / "index"
    build_index(SEEDS, out, FakeEmbedder())
    return out


@pytest.fixture
def fake_settings(fake_index_dir, tmp_path):
    from assistant.config import Settings

    return Settings(seeds_dir=SEEDS, index_dir=fake_index_dir, embedder="fake-hash", llm="fake",
                    db_path=tmp_path / "records.sqlite3", cache_dir=tmp_path / "cache",
                    today="2026-11-26")


@pytest.fixture
def fake_assistant(fake_settings):
    from assistant.answering.assistant import Assistant

    return Assistant.from_settings(fake_settings)


@pytest.fixture(scope="session")
def postgres_cluster():
    """One real PostgreSQL server for the session, from the machine's binaries (scripts/postgres.sh)."""
    from assistant.serving.postgres import TemporaryPostgres

    cluster = TemporaryPostgres.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster, request) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40] + f"_{os.getpid()}_{time.monotonic_ns()}"
    url = postgres_cluster.create_database(name)
    yield url
    postgres_cluster.drop_database(name)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def seeds_copy(tmp_path) -> Path:
    dst = tmp_path / "seeds"
    shutil.copytree(SEEDS, dst)
    return dst
