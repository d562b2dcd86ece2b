"""Fakes registered like the real models (assistant.testing.fakes), and fixtures shared by every test.

The fake embedder hashes BM25 tokens into a fixed-size vector: deterministic, fast, and good enough
that retrieval in unit tests is meaningful. The fake LLM answers from the evidence in the prompt the
way the real model is asked to (sentences with [n] markers), or follows a script a test provides.
Each fake has a real twin tested under the `model` marker.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.testing.fakes import FAKE_LLMS, FakeEmbedder, FakeLLM, register_fakes

__all__ = ["FAKE_LLMS", "FakeEmbedder", "FakeLLM"]

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
ARTIFACTS = ROOT / "test-artifacts"

register_fakes()


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
    """The seed library with the fake models, and no stored translations: tests of the quote's
    translation made at request time use it; tests of the stored ones (test_translations.py) put theirs."""
    from assistant.answering.assistant import Assistant

    assistant = Assistant.from_settings(fake_settings)
    assistant.translations.entries.clear()
    return assistant


@pytest.fixture(scope="session")
def postgres_cluster():
    """One real PostgreSQL server for the session, from the machine's binaries (scripts/services.sh)."""
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


@pytest.fixture
def library(tmp_path, monkeypatch):
    """A library folder of two test documents, indexed with the fake embedder, and the settings (env)
    pointing at it, the fake model among them (`jxa docs add` translates what it publishes)."""
    from assistant.retrieval.build import build_index

    documents = ROOT / "tests" / "documents"
    seeds = tmp_path / "library"
    seeds.mkdir()
    shutil.copy(documents / "qinglan-articles.txt", seeds / "000_qinglan.txt")
    shutil.copy(documents / "lakeside-articles.txt", seeds / "001_lakeside.txt")
    index = tmp_path / "index"
    build_index(seeds, index, FakeEmbedder())
    for name, value in {"JXA_EMBEDDER": "fake-hash", "JXA_LLM": "fake", "JXA_SEEDS_DIR": str(seeds),
                        "JXA_INDEX_DIR": str(index), "JXA_TODAY": "2026-06-01",
                        "JXA_CACHE_DIR": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(name, value)
    return seeds, index
