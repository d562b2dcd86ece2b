"""Translations made once, at ingestion: the store in the library folder, `jxa translations build |
check`, `jxa docs add` translating what it publishes, and the request path showing the stored text
(no model call) on every channel. Fakes here; `test_docs_add_translates_with_the_real_model` is the
real twin, and `test_every_seed_sentence_has_a_checked_translation` holds the committed file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from assistant.answering import facts
from assistant.answering.paths.translate import translation_flaw
from assistant.cli import main
from assistant.corpus.clean import has_cjk
from assistant.corpus.sentences import measure_sentences
from assistant.errors import BackendError, CorpusError
from assistant.library import translations as module
from assistant.library.translations import (
    StoredTranslation,
    Translations,
    check_library,
    key,
    library_sentences,
    translate_library,
)
from assistant.retrieval.hybrid import Glossary
from assistant.types import Outcome

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "tests" / "documents"
XUHUI_IP_EN = "What does Xuhui do to protect intellectual property?"
JINGAN_IP_ZH = "静安区怎样保护知识产权？"


@pytest.fixture
def gate_open(monkeypatch):
    """The lexical fake embedder cannot match across languages; these tests are about what follows."""
    from assistant.answering import router
    from assistant.answering.gate import GateDecision

    monkeypatch.setattr(router, "decide", lambda *a, **k: GateDecision(True, ""))


def _rendering(source: str, language: str) -> str:
    """A made-up translation that passes the checks, unique per sentence (letters only) and keeping its figures."""
    tag = "".join(chr(97 + int(c, 16)) for c in key(source, language)[:6])
    figures = " ".join(str(int(n)) if n == int(n) else str(n) for n in sorted(facts.digit_numbers(source)))
    if language == "en":
        return f"Stored rendering {tag} {figures}".strip() + "."
    return f"已存中文文本{figures}。"


def _store_all(assistant, text=_rendering) -> None:
    data = assistant.retriever.data
    for source, language in library_sentences(data.documents.values(), data.measures.values()):
        assistant.translations.put(StoredTranslation(source, language, text(source, language), "test"))


def _failing_answers(messages):
    """Every answer uncited (so the quote path answers); any translation asked of the model is marked."""
    if "Translate the policy text" in messages[-1]["content"]:
        return "MODEL RENDERING"
    return "Xuhui does many good things."


def _translation_calls(llm) -> int:
    return sum("Translate the policy text" in c[-1]["content"] for c in llm.calls)


# --- the store ---

def test_the_store_round_trips_and_saves_atomically(tmp_path):
    store = Translations.load(tmp_path)
    assert store.entries == {} and not store.path.exists()
    store.put(StoredTranslation("区财政局给予补贴。", "en", "The district finance bureau grants a subsidy.", "m"))
    store.put(StoredTranslation("We grant 50 awards.", "zh", None, "m"))
    store.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["translations.json"]  # no temporary file left
    again = Translations.load(tmp_path)
    assert again.entries == store.entries
    assert again.text("区财政局给予补贴。", "en") == "The district finance bureau grants a subsidy."
    assert again.get("We grant 50 awards.", "zh").text is None and again.text("We grant 50 awards.", "zh") is None
    assert again.get("区财政局给予补贴。", "zh") is None  # keyed by target language too


@pytest.mark.parametrize("content", ["{", json.dumps({"entries": []}), json.dumps({"format": 1}),
                                     json.dumps({"entries": {"x": {"source": "a", "language": "fr", "text": "b"}}}),
                                     json.dumps({"entries": {"x": {"source": "a", "language": "en", "text": 3}}})])
def test_a_malformed_file_is_a_clear_error(tmp_path, content):
    (tmp_path / "translations.json").write_text(content, encoding="utf-8")
    with pytest.raises(CorpusError, match=r"translations\.json is not a valid translations file.*jxa translations build"):
        Translations.load(tmp_path)


def test_a_running_store_follows_the_file_and_keeps_its_entries_when_it_breaks(tmp_path, monkeypatch):
    monkeypatch.setattr(module, "RELOAD_EVERY_S", 0.0)
    running = Translations.load(tmp_path, follow=True)
    writer = Translations.load(tmp_path)
    writer.put(StoredTranslation("源句。", "en", "A source sentence.", "m"))
    writer.save()
    assert running.text("源句。", "en") == "A source sentence."
    (tmp_path / "translations.json").write_text("{ broken", encoding="utf-8")
    assert running.text("源句。", "en") == "A source sentence."


def test_translate_library_resumes_after_a_failure_and_prunes_what_left_the_library(tmp_path):
    sentences = [(f"第{i}句。", "en") for i in range(1, 6)]
    calls = []

    def flaky(source, language):
        calls.append(source)
        if len(calls) == 3:
            raise BackendError("the model stopped")
        return None if "4" in source else f"Sentence {source[1]}."

    store = Translations.load(tmp_path)
    with pytest.raises(BackendError):
        translate_library(store, sentences, flaky, "m", save_every=10)
    assert len(Translations.load(tmp_path).entries) == 2  # what was made before the failure is on disk
    report = translate_library(Translations.load(tmp_path), sentences, flaky, "m")
    assert (report.sentences, report.made, report.kept, report.pruned) == (5, 3, 2, 0)
    assert calls[3:] == ["第3句。", "第4句。", "第5句。"]  # nothing stored is asked again
    store = Translations.load(tmp_path)
    assert store.get("第4句。", "en").text is None and store.text("第5句。", "en") == "Sentence 5."

    report = translate_library(store, sentences[1:], flaky, "m")
    assert (report.made, report.pruned) == (0, 1) and store.get("第1句。", "en") is None
    report = translate_library(store, sentences, flaky, "m", limit=0)  # a limited run prunes nothing
    assert report.made == 0 and report.pruned == 0 and len(store.entries) == 4


def test_a_stored_text_the_checks_now_reject_is_made_again_and_a_sound_one_is_not(tmp_path):
    from assistant.answering.paths.translate import translation_flaw

    store = Translations.load(tmp_path)
    store.put(StoredTranslation("优化服务。", "en", "Here is the translation:\n\nOptimise services.", "m"))
    store.put(StoredTranslation("加强保护。", "en", "Strengthen protection.", "m"))
    asked = []

    def model(source, language):
        asked.append(source)
        return "Optimise services."

    sentences = [("优化服务。", "en"), ("加强保护。", "en")]
    report = translate_library(store, sentences, model, "m", flaw=translation_flaw)
    assert asked == ["优化服务。"] and report.made == 1
    assert store.text("优化服务。", "en") == "Optimise services."
    assert translate_library(store, sentences, model, "m", flaw=translation_flaw).made == 0


def test_the_model_speaking_of_its_task_is_no_translation():
    from assistant.answering.paths.translate import translation_flaw

    assert translation_flaw("优化服务。", "Here is the translation: Optimise services.", "en")
    assert translation_flaw("优化服务。", "To translate the policy text into English: Optimise services.", "en")
    assert translation_flaw("We optimise services.", "以下是译文：优化服务。", "zh")
    assert not translation_flaw("提供翻译服务。", "Provide translation services.", "en")  # the measure's own word
    assert not translation_flaw("优化服务。", "Optimise services.", "en")


def test_a_translation_may_not_add_a_duty_or_a_cost_its_source_does_not_state():
    assert "obligation" in translation_flaw("打造市场监管数字化体系。", "We need to create a digital market supervision system.",
                                            "en")
    assert "cost" in translation_flaw("优化展会服务。", "Exhibition services are free of charge.", "en")
    assert not translation_flaw("企业须提交申请材料。", "Enterprises must submit application materials.", "en")
    assert not translation_flaw("提前公开各部门年度行政检查计划。", "Publish departments' annual inspection plans early.", "en")


def test_half_a_word_glued_to_chinese_is_left_untranslated_but_an_abbreviation_is_not():
    from assistant.answering.paths.translate import translation_flaw

    assert translation_flaw("We build Haiju Talent parks.", "我们建设“海ju人才”园区。", "zh")
    assert not translation_flaw("We use AI and 5G.", "我们使用AI和5G技术。", "zh")


def test_check_library_names_missing_entries_and_stored_texts_that_fail_the_checks(tmp_path):
    store = Translations.load(tmp_path)
    store.put(StoredTranslation("补贴50万元。", "en", "A subsidy of 500,000 yuan.", "m"))  # 50万 kept as 500,000
    store.put(StoredTranslation("补贴30万元。", "en", "A subsidy of 999 yuan.", "staff"))  # edited badly
    store.put(StoredTranslation("We support innovation.", "zh", None, "m"))
    sentences = [("补贴50万元。", "en"), ("补贴30万元。", "en"), ("We support innovation.", "zh"), ("新句。", "en")]
    problems, kept = check_library(store, sentences, translation_flaw)
    assert kept == 1
    assert [(p.source, p.problem) for p in problems] == [("补贴30万元。", "a figure of the source is missing"),
                                                        ("新句。", "no translation stored")]


def test_translation_flaw_names_each_fault():
    assert translation_flaw("区财政局给予补贴。", "", "en") == "empty"
    assert translation_flaw("区财政局给予补贴。", "The 区财政局 grants a subsidy.", "en") == "Chinese left untranslated"
    assert translation_flaw("We support docking.", "我们支持 docking 工作。", "zh") == "English words left untranslated"
    assert translation_flaw("Awards of 30 yuan.", "奖励30元，另加500元。", "zh") == "a figure not in the source"
    assert translation_flaw("Awards of 30 yuan.", "奖励30元。", "zh") == ""


# --- official names from the glossary ---

def test_the_glossary_gives_renderings_of_first_terms_only_and_the_prompt_carries_them(fake_assistant):
    glossary = Glossary([{"en": ["business environment", "business climate"], "zh": ["营商环境", "营商氛围"]},
                         {"en": ["one-stop"], "zh": ["一站式"]}])
    assert glossary.renderings("持续优化营商环境，推进一站式服务。", "en") == [
        ("营商环境", "business environment"), ("一站式", "one-stop")]
    assert glossary.renderings("营商氛围", "en") == []  # a near-synonym for search is not a rendering
    assert glossary.renderings("A better business environment.", "zh") == [("business environment", "营商环境")]
    assert glossary.renderings("A better business climate.", "zh") == []

    plain = fake_assistant.prompting.translation("优化营商环境。", "en")[-1]["content"]
    named = fake_assistant.prompting.translation("优化营商环境。", "en", [("营商环境", "business environment")])
    assert plain.endswith("</text>")  # no terms: the prompt as before, so its stored prefix and cached replies hold
    assert named[-1]["content"] == plain + "\nRender these terms as given: 营商环境 = business environment."


# --- the request path ---

def test_a_quote_over_a_chinese_measure_shows_the_stored_translation_without_a_model_call(fake_assistant, gate_open):
    _store_all(fake_assistant)
    llm = fake_assistant.llm
    llm.script = _failing_answers
    answer = fake_assistant.ask(XUHUI_IP_EN)
    assert answer.outcome is Outcome.TRANSLATED_QUOTE and answer.citations[0].document.language == "zh"
    assert "In translation" in answer.answer and "Stored rendering" in answer.answer
    assert "MODEL RENDERING" not in answer.answer and _translation_calls(llm) == 0
    # The chosen sentences' own renderings, in the measure's order.
    sentences = measure_sentences(answer.citations[0].measure.text)
    shown = [s for s in sentences if _rendering(s, "en")[:-1] in answer.answer]
    assert shown and [sentences.index(s) for s in shown] == sorted(sentences.index(s) for s in shown)

    # Same question, same words, asked again and streamed.
    assert fake_assistant.ask(XUHUI_IP_EN).answer == answer.answer
    events = list(fake_assistant.ask_stream(XUHUI_IP_EN))
    streamed = "".join(e.text for e in events if e.kind == "delta")
    final = next(e.answer for e in events if e.kind == "final")
    assert streamed == final.answer == answer.answer
    assert _translation_calls(llm) == 0


def test_a_chinese_question_over_an_english_measure_shows_the_stored_chinese(fake_assistant):
    _store_all(fake_assistant)
    fake_assistant.llm.script = _failing_answers
    answer = fake_assistant.ask(JINGAN_IP_ZH)
    assert answer.outcome is Outcome.TRANSLATED_QUOTE and answer.citations[0].document.language == "en"
    assert "译文如下" in answer.answer and "已存中文文本" in answer.answer and _translation_calls(fake_assistant.llm) == 0


def test_a_measure_whose_translations_all_failed_is_quoted_in_the_original_without_a_model_call(fake_assistant,
                                                                                                gate_open):
    _store_all(fake_assistant, text=lambda source, language: None)
    fake_assistant.llm.script = _failing_answers
    answer = fake_assistant.ask(XUHUI_IP_EN)
    assert answer.outcome is Outcome.ORIGINAL_QUOTE and has_cjk(answer.answer)
    assert _translation_calls(fake_assistant.llm) == 0


def test_when_the_answering_sentences_have_no_kept_translation_they_are_quoted_in_the_original(fake_assistant,
                                                                                            gate_open):
    """Not a translated neighbour that answers something else."""
    _store_all(fake_assistant)
    fake_assistant.llm.script = _failing_answers
    first = fake_assistant.ask(XUHUI_IP_EN)
    chosen = first.citations[0].quoted
    assert first.outcome is Outcome.TRANSLATED_QUOTE and chosen
    _store_all(fake_assistant, text=lambda source, language: None if source in chosen else _rendering(source, language))
    answer = fake_assistant.ask(XUHUI_IP_EN)
    assert answer.outcome is Outcome.ORIGINAL_QUOTE and answer.citations[0].quoted == chosen
    assert "Stored rendering" not in answer.answer and all(s in answer.answer for s in chosen)
    assert _translation_calls(fake_assistant.llm) == 0


def test_a_stored_text_edited_into_a_wrong_figure_is_not_shown(fake_assistant, gate_open):
    _store_all(fake_assistant, text=lambda source, language: "The district grants 999 million yuan to every firm.")
    fake_assistant.llm.script = _failing_answers
    answer = fake_assistant.ask(XUHUI_IP_EN)
    assert "999" not in answer.answer and answer.outcome is Outcome.ORIGINAL_QUOTE


def test_a_measure_with_no_stored_translation_is_translated_at_request_time(fake_assistant, gate_open):
    """A document added with --no-translate: the quote is translated now, as before, and checked."""
    fake_assistant.llm.script = _failing_answers
    answer = fake_assistant.ask(XUHUI_IP_EN)
    assert _translation_calls(fake_assistant.llm) >= 1
    assert answer.outcome is Outcome.TRANSLATED_QUOTE and "MODEL RENDERING" in answer.answer


# --- the commands ---


def _sentences_of(index: Path, doc_id: str | None = None) -> list[tuple[str, str]]:
    from assistant.retrieval.store import load_index

    data = load_index(index)
    return library_sentences(data.documents.values(),
                             [m for m in data.measures.values() if doc_id is None or m.doc_id == doc_id])


def _added(index: Path, before: set[str]) -> str:
    from assistant.retrieval.store import load_index

    (doc_id,) = set(load_index(index).documents) - before
    return doc_id


def test_docs_add_translates_what_it_publishes_and_build_then_check_cover_the_library(library, capsys):
    from assistant.retrieval.store import load_index

    seeds, index = library
    before = set(load_index(index).documents)
    assert main(["docs", "add", str(DOCS / "elmford-exhibitions.md")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"translations: \d+ sentences translated now", out)
    store = Translations.load(seeds)
    doc_id = _added(index, before)
    new = _sentences_of(index, doc_id)
    assert new and all(store.get(s, lang) is not None for s, lang in new)
    assert all(lang == "zh" for _, lang in new)  # an English document, into Chinese

    assert main(["translations", "check"]) == 1  # the two documents there before have none yet
    assert "no translation stored" in capsys.readouterr().out
    assert main(["translations", "build"]) == 0
    capsys.readouterr()
    assert main(["translations", "check", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sentences"] == len(_sentences_of(index)) and report["problems"] == []

    assert main(["docs", "remove", doc_id]) == 0
    assert main(["translations", "build"]) == 0
    assert f"{len(new)} stale entries removed" in capsys.readouterr().out
    assert len(Translations.load(seeds).entries) == len(_sentences_of(index))


def test_docs_add_no_translate_leaves_the_store_alone(library, capsys):
    seeds, _ = library
    assert main(["docs", "add", str(DOCS / "elmford-exhibitions.md"), "--no-translate"]) == 0
    assert "--no-translate" in capsys.readouterr().out and not (seeds / "translations.json").exists()


def test_a_malformed_store_stops_the_check_with_its_message(library, capsys):
    seeds, _ = library
    (seeds / "translations.json").write_text("[]", encoding="utf-8")
    assert main(["translations", "check"]) != 0
    assert "not a valid translations file" in capsys.readouterr().err


# --- the library as committed, and the real model ---

def test_every_seed_sentence_has_a_checked_translation(monkeypatch, capsys):
    """`jxa translations check` over the seed library: every sentence of every measure has an entry, and
    every stored text keeps the source's figures and leaves no word untranslated."""
    monkeypatch.setenv("JXA_SEEDS_DIR", str(ROOT / "seeds"))
    assert main(["translations", "check", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == [] and report["kept"] >= report["sentences"] // 2


def test_a_translation_is_aligned_with_its_own_source_and_not_with_another_measures(monkeypatch):
    """The alignment check of stored translations, with the real embedder over the seed library: each
    kept translation passes against its own sentence, and fails against a sentence of another document."""
    from assistant.answering.assistant import Assistant
    from assistant.answering.paths.translate import alignment_flaw
    from assistant.config import Settings

    monkeypatch.setenv("JXA_SEEDS_DIR", str(ROOT / "seeds"))
    assistant = Assistant.from_settings(Settings())
    data = assistant.retriever.data
    doc_of = {s: m.doc_id for m in data.measures.values() for s in measure_sentences(m.text)}
    kept = [e for e in assistant.translations.entries.values() if e.text and e.language == "en" and e.source in doc_of]
    pairs = [(a, b) for a, b in zip(kept[::7], kept[3::7], strict=False) if doc_of[a.source] != doc_of[b.source]][:12]
    assert len(pairs) >= 8
    for a, b in pairs:
        assert alignment_flaw(assistant.services, a.source, a.text) == ""
        assert alignment_flaw(assistant.services, a.source, b.text) == "not aligned with its source"


@pytest.mark.model
def test_docs_add_translates_with_the_real_model(library, monkeypatch, capsys):
    from assistant.retrieval.store import load_index

    seeds, index = library
    monkeypatch.delenv("JXA_LLM")  # the bundled model
    before = set(load_index(index).documents)
    assert main(["docs", "add", str(DOCS / "elmford-exhibitions.md")]) == 0
    store = Translations.load(seeds)
    new = _sentences_of(index, _added(index, before))
    entries = [store.get(s, lang) for s, lang in new]
    assert entries and all(e is not None and e.model.startswith("llama-cpp:") for e in entries)
    kept = [(s, e.text) for (s, _), e in zip(new, entries, strict=True) if e.text]
    assert kept, "no sentence of the document got a translation that passed its checks"
    for source, text in kept:
        assert translation_flaw(source, text, "zh") == "" and has_cjk(text)


def test_each_stage_an_answer_ran_is_timed_for_the_bench(fake_assistant, gate_open):
    from assistant.evaluation.commands import BENCH_STAGES, _bench_run

    fake_assistant.llm.script = _failing_answers
    quoted = fake_assistant.ask(XUHUI_IP_EN)  # a lead in the other language: the check, then a translated quote
    assert quoted.outcome is Outcome.TRANSLATED_QUOTE
    assert {"retrieve_ms", "check_ms", "translate_ms", "total_ms"} <= set(quoted.timings)
    assert "answer_ms" not in quoted.timings  # no reply is asked for over such a lead
    assert quoted.timings["check_ms"] + quoted.timings["translate_ms"] <= quoted.timings["total_ms"]
    fake_assistant.llm.script = None
    replied = fake_assistant.ask("How does Jing'an protect intellectual property rights?")
    assert "answer_ms" in replied.timings and "translate_ms" not in replied.timings
    stages = _bench_run(fake_assistant, [XUHUI_IP_EN], [JINGAN_IP_ZH])["en"][-1]
    assert set(stages) == set(BENCH_STAGES) and len(stages["translate"]) == 1 and len(stages["total"]) == 1
