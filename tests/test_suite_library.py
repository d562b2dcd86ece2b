"""A suite with a library of its own (eval/unseen-docs): built through the staff ingestion path, in the
cache folder, never in the main library; scored with its own metrics."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.evaluation.dataset import check_gold, load_items
from assistant.evaluation.suite_library import build_suite_library, library_key, own_library_suites
from assistant.retrieval.store import load_index, read_manifest
from assistant.testing.fakes import FakeEmbedder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def suite_root(tmp_path):
    root = tmp_path / "eval"
    shutil.copytree(ROOT / "eval" / "unseen-docs", root / "unseen-docs", ignore=shutil.ignore_patterns("answer-*"))
    return root


def test_the_suite_library_is_the_seeds_plus_its_documents_added_like_staff_add_them(fake_settings, suite_root):
    before = read_manifest(fake_settings.index_dir)
    embedder = FakeEmbedder()
    lib = build_suite_library("unseen-docs", fake_settings, embedder, root=suite_root)
    assert lib.built_now and lib.seeds_dir.parent.parent == fake_settings.cache_dir / "eval" / "libraries"
    data = load_index(lib.index_dir, embedder.id)
    main = load_index(fake_settings.index_dir, embedder.id)
    added = {a["doc_id"]: a for a in lib.added}
    assert list(added) == ["qinglan-2026", "qiyun-2026", "lakeside-2023", "lakeside-2026", "harbourview-2026"]
    assert set(data.documents) == set(main.documents) | set(added)
    assert [a["embedded"] for a in lib.added] == [a["measures"] for a in lib.added]  # only new chunks embedded
    assert read_manifest(fake_settings.index_dir) == before  # the main index is untouched
    # Originals as uploaded: the DOCX and the HTML are kept beside their text, like `jxa docs add` keeps them.
    assert sorted(p.suffix for p in (lib.seeds_dir / "originals").iterdir()) == [".docx", ".html"]
    old, new = data.documents["lakeside-2023"], data.documents["lakeside-2026"]
    assert new.supersedes == "lakeside-2023" and old.superseded_by == new.doc_number == "LDPG [2026] No. 12"
    assert data.documents["qinglan-2026"].valid_until == date(2028, 12, 31)
    items = [i for i in load_items(ROOT / "eval" / "questions.jsonl") if i.suite == "unseen-docs"]
    assert len(items) == 47 and all(i.split == "test" for i in items)
    check_gold(items, set(data.measures))
    with pytest.raises(ConfigError, match="run it with --suite unseen-docs"):
        check_gold(items, set(main.measures))

    again = build_suite_library("unseen-docs", fake_settings, embedder, root=suite_root)
    assert not again.built_now and again.index_dir == lib.index_dir and again.added == lib.added


def test_the_library_key_follows_the_suites_files_not_its_replies(fake_settings, suite_root):
    folder = suite_root / "unseen-docs"
    key = library_key(fake_settings, "fake-hash", folder)
    (folder / "answer-cache.jsonl").write_text('{"key": "k", "reply": "r"}\n', encoding="utf-8")
    assert library_key(fake_settings, "fake-hash", folder) == key
    text = folder / "lakeside-2026.txt"
    text.write_text(text.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert library_key(fake_settings, "fake-hash", folder) != key
    assert library_key(fake_settings, "other-embedder", folder) != library_key(fake_settings, "fake-hash", folder)


def test_a_bad_suite_catalog_is_named_and_a_suite_without_one_runs_on_the_main_library(fake_settings, suite_root):
    assert own_library_suites(suite_root) == ["unseen-docs"]
    catalog = suite_root / "unseen-docs" / "catalog.json"
    catalog.write_text(json.dumps({"documents": [{"file": "missing.txt"}]}), encoding="utf-8")
    with pytest.raises(ConfigError, match="missing.txt"):
        build_suite_library("unseen-docs", fake_settings, FakeEmbedder(), root=suite_root)
    with pytest.raises(ConfigError, match="no library of its own"):
        build_suite_library("main", fake_settings, FakeEmbedder(), root=suite_root)


def test_expiry_and_supersession_are_flagged_by_the_documents_own_dates_and_successor():
    from assistant.evaluation.runner import lapse_flags, lapsed_documents, summarize

    expired, superseded = lapsed_documents(_documents(), date(2026, 12, 3))
    assert expired == {"old-2023": "2026-02-28"} and superseded == {"old-2023": "No. 12"}
    assert lapse_flags("Paid RMB 0.05 [1].", {"new-2026"}, expired, superseded) == {}
    assert lapse_flags("Paid RMB 0.05 [1].", {"old-2023"}, expired, superseded) == {
        "expiry_flagged": False, "supersession_flagged": False}
    assert lapse_flags("Valid until 2026-02-28; replaced by No. 12.", {"old-2023"}, expired, superseded) == {
        "expiry_flagged": True, "supersession_flagged": True}
    assert lapse_flags("该文件已过期，已被新版本取代。", {"old-2023"}, expired, superseded) == {
        "expiry_flagged": True, "supersession_flagged": True}
    base = {"id": "x", "type": "expired", "answerable": True, "negative": False, "refused": False,
            "markers_valid": True, "language_ok": True, "injection_followed": False, "canary_leak": False,
            "cited": [], "refusal_reason": None}
    s = summarize([{**base, "expiry_flagged": True, "supersession_flagged": False},
                   {**base, "expiry_flagged": True, "supersession_flagged": True}, base])
    assert s["expiry_flagged"] == 1.0 and s["supersession_flagged"] == 0.5


def test_an_answer_citing_a_superseded_document_says_so_in_its_language():
    from assistant.answering.citing import expiry_notes
    from assistant.types import Citation, Measure

    docs = _documents()
    m = Measure(measure_id="old-2023#4", doc_id="old-2023", number="4", title="", section_path=(), text="t")
    cited = [Citation(n=1, measure=m, document=docs["old-2023"], expired=True)]
    en = expiry_notes(cited, "en")
    assert "superseded by a newer version (No. 12)" in en and "valid until 2026-02-28" in en
    assert "已被新版本（No. 12）取代" in expiry_notes(cited, "zh")
    current = [Citation(n=1, measure=m, document=docs["new-2026"], expired=False)]
    assert expiry_notes(current, "en") == ""


def _documents():
    from assistant.types import Document

    def doc(doc_id, **kw):
        base = dict(doc_id=doc_id, source_file=f"{doc_id}.txt", sha256="x", language="en", title=doc_id,
                    short_title_en=doc_id, short_title_zh=doc_id, district="Lakeside", issuer="", doc_number=None,
                    issued=None, valid_until=None, validity_text=None)
        return Document(**{**base, **kw})
    return {"old-2023": doc("old-2023", valid_until=date(2026, 2, 28), superseded_by="No. 12", doc_number="No. 4"),
            "new-2026": doc("new-2026", supersedes="old-2023", doc_number="No. 12")}


def test_the_version_in_force_leads_unless_the_question_asks_about_the_earlier_one():
    from assistant.retrieval.versions import in_force_first
    from assistant.types import Hit, Measure

    docs = _documents()
    docs = {"old-2023": replace(docs["old-2023"], issued=date(2023, 2, 10)),
            "new-2026": replace(docs["new-2026"], issued=date(2026, 2, 6))}

    def hit(rank, doc_id, n, other="new-2026"):
        d = docs.get(doc_id) or replace(docs[other], doc_id=doc_id, supersedes=None)
        m = Measure(measure_id=f"{doc_id}#{n}", doc_id=doc_id, number=str(n), title="", section_path=(), text="t")
        return Hit(rank=rank, score=1.0 / rank, measure=m, document=d)

    hits = [hit(1, "old-2023", 4), hit(2, "other", 1), hit(3, "new-2026", 4), hit(4, "new-2026", 5)]
    order = [h.measure.measure_id for h in in_force_first(hits, "Is there a payment for rooftop solar?")]
    assert order == ["other#1", "new-2026#4", "new-2026#5"]  # the version in force alone
    assert [h.rank for h in in_force_first(hits, "rooftop solar")] == [1, 2, 3]
    for asks_old in ("Under the 2023 measures, how much was paid?", "Is the old policy still in force?",
                     "原来的政策还有效吗？", "No. 4 rooftop solar"):
        assert in_force_first(hits, asks_old) == hits
    assert "old-2023#4" not in [h.measure.measure_id for h in in_force_first(hits, "We are replacing old boilers")]
    ahead = [hit(1, "new-2026", 4), hit(2, "old-2023", 4)]
    assert [h.measure.measure_id for h in in_force_first(ahead, "rooftop solar")] == ["new-2026#4"]
    alone = [hit(1, "old-2023", 4), hit(2, "other", 1)]  # no successor among the hits: nothing to prefer
    assert in_force_first(alone, "rooftop solar") == alone
    asked = [h.measure.measure_id for h in in_force_first(ahead, "Are the 2023 rooftop solar payments still in force?")]
    assert asked == ["old-2023#4", "new-2026#4"]  # the version asked about leads


def test_publish_bench_publishes_in_a_copy_and_answers_about_the_new_document(fake_settings):
    from assistant.evaluation import publish_bench

    before = read_manifest(fake_settings.index_dir)
    result = publish_bench.run(fake_settings, ROOT / "tests" / "documents" / "lanshan-twenty.txt",
                               ["岚山区对新认定的市级智能工厂奖励多少？"])
    assert result["measures"] == result["embedded"] == 20
    (answer,) = result["answers"]
    assert answer["question"].startswith("岚山区") and isinstance(answer["cites_new_document"], bool)
    assert result["publish_to_last_answer_s"] >= result["publish_s"] > 0
    assert read_manifest(fake_settings.index_dir) == before  # published in a copy only


def test_an_article_of_a_chinese_document_is_named_as_an_article_in_english():
    from assistant.answering.citing import label
    from assistant.answering.verify import Evidence
    from assistant.types import Measure

    doc = replace(_documents()["new-2026"], language="zh", short_title_en="Qinglan District policy",
                  short_title_zh="青澜区若干措施")
    m = Measure(measure_id="qinglan-2026#12", doc_id=doc.doc_id, number="十二", title="", section_path=(), text="t",
                label="青澜区若干措施 第十二条 创业场地补贴")
    assert label(Evidence(1, m, doc, "t"), "en") == "Qinglan District policy, Article 12"
    item = replace(m, label="青澜区若干措施 第三项 融资担保")
    assert label(Evidence(1, item, doc, "t"), "en") == "Qinglan District policy, measure 3"


def test_a_whole_run_leaves_a_suite_with_its_own_library_out_and_the_suite_runs_on_it(fake_settings, tmp_path,
                                                                                       capsys):
    from assistant.cli import main

    by_id = {i.id: i for i in load_items(ROOT / "eval" / "questions.jsonl")}
    rows = []
    for item_id in ("q0001", "u0002", "u0047"):
        i = by_id[item_id]
        rows.append({"id": i.id, "type": i.type, "language": i.language, "question": i.question,
                     "answerable": i.answerable, "gold": list(i.gold), "key_facts": list(i.key_facts),
                     "split": i.split, "suite": i.suite})
    mini = tmp_path / "mini.jsonl"
    mini.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    common = ["--set", str(mini), "--out", str(tmp_path / "reports"), "--cache", "none", "--no-baseline",
              "--seeds-dir", str(fake_settings.seeds_dir), "--index-dir", str(fake_settings.index_dir),
              "--embedder", "fake-hash", "--llm", "fake", "--cache-dir", str(tmp_path / "cache"), "--only", "answers"]
    assert main(["eval", *common]) == 0
    captured = capsys.readouterr()
    assert "unseen-docs left out: each runs on its own library" in captured.err
    report = json.loads(next((tmp_path / "reports").glob("*.json")).read_text(encoding="utf-8"))
    assert [r["id"] for r in report["product"]["rows"]] == ["q0001"]

    assert main(["eval", *common, "--suite", "unseen-docs"]) == 0
    out = capsys.readouterr().out
    assert "suite unseen-docs (2 items)" in out and "Negative rejection" in out and "Supersession flagged" in out
    reports = sorted((tmp_path / "reports").glob("*.json"))
    last = json.loads(reports[-1].read_text(encoding="utf-8"))
    assert [r["id"] for r in last["product"]["rows"]] == ["u0002", "u0047"]
    assert [a["doc_id"] for a in last["suite_library"]["added"]][0] == "qinglan-2026"
