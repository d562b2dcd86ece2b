"""Hybrid retrieval over the fake-embedded seed index: modes, ranks, places, BM25 terms."""

from __future__ import annotations

import pytest
from conftest import FakeEmbedder

from assistant.corpus.clean import normalize_for_index
from assistant.errors import ConfigError, IndexLoadError
from assistant.retrieval import open_retriever
from assistant.retrieval.embedders import get_embedder
from assistant.retrieval.hybrid import Glossary, HybridRetriever
from assistant.retrieval.store import load_index
from assistant.retrieval.tokenize import tokenize


@pytest.fixture(scope="module")
def retriever(fake_index_dir):
    return HybridRetriever(load_index(fake_index_dir, FakeEmbedder().id), FakeEmbedder())


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
@pytest.mark.parametrize("k", [1, 5, 12])
def test_each_mode_returns_k_ranked_hits(retriever, mode, k):
    hits = retriever.search("support for enterprises protecting intellectual property rights and patents", k=k, mode=mode)
    assert len(hits) == k
    assert [h.rank for h in hits] == list(range(1, k + 1))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len({h.measure.measure_id for h in hits}) == k  # a measure appears once, whatever its chunks
    for h in hits:
        assert h.document.doc_id == h.measure.doc_id
        if mode == "dense":
            assert h.dense_rank is not None and h.bm25_rank is None
        elif mode == "bm25":
            assert h.bm25_rank is not None and h.dense_rank is None


def test_lexical_match_finds_the_measure(retriever):
    hits = retriever.search("protecting intellectual property rights", k=5)
    assert any("intellectual property" in h.measure.text.lower() for h in hits[:3])
    assert hits[0].bm25_rank is not None and hits[0].dense_rank is not None


def test_chinese_query_finds_traditional_text(retriever):
    hits = retriever.search("知识产权保护", k=5)
    assert "xuhui-2026#II.8" in [h.measure.measure_id for h in hits]
    # A traditional-script question is the same question.
    same = retriever.search("知識產權保護", k=5)
    assert [h.measure.measure_id for h in same] == [h.measure.measure_id for h in hits]


@pytest.mark.parametrize("question, district, prefix", [
    ("How does Jing'an protect intellectual property rights?", "Jing'an", None),
    ("徐汇区在知识产权保护方面有什么措施", "Xuhui", None),
    ("上海市 知识产权保护", "Shanghai", None),
    ("intellectual property in the Zhangjiang park", None, "zhangjiang"),
])
def test_named_place_ranks_its_documents_first(retriever, question, district, prefix):
    hits = retriever.search(question, k=5)
    top = hits[0]
    assert top.boosted
    if district:
        assert top.document.district == district
    else:
        assert top.document.doc_id.startswith(prefix)


def test_place_boost_changes_the_order(retriever):
    plain = retriever.search("知识产权保护", k=5)
    jingan = retriever.search("静安 知识产权保护", k=5)
    assert jingan[0].document.district == "Jing'an"
    assert plain[0].document.district != "Jing'an"
    # Another district's documents are pushed down; municipal ones stay neutral.
    assert all(h.document.district != "Xuhui" for h in jingan[:3])


def test_modes_without_fusion_ignore_the_place_boost(retriever):
    for mode in ("dense", "bm25"):
        assert not any(h.score > 0.05 for h in retriever.search("Xuhui intellectual property", k=5, mode=mode))


def test_query_with_no_known_words(retriever):
    assert retriever.search("zzqx wvvy", k=3, mode="bm25") == []
    assert len(retriever.search("zzqx wvvy", k=3)) == 3  # dense always ranks something


def test_plan_normalises_and_detects_places(retriever):
    plan = retriever.plan("  徐匯區 Intellectual Property  ")
    assert plan.text == "徐汇区 intellectual property"
    assert ("district", "Xuhui") in plan.places
    assert "intellectu" in plan.tokens or "intellectual" in plan.tokens


def test_places_come_from_the_library(retriever):
    named = retriever.places.named
    assert named("jing'an and xuhui") == (("district", "Jing'an"), ("district", "Xuhui"))
    assert named("静安区") == (("district", "Jing'an"),)
    # A zone one document's title is about means that document.
    assert named("zhangjiang park") == (("doc", "zhangjiang-jingan-2025"),)
    assert named("jinganx") == ()  # no partial words
    assert named("what about pudong") == ()
    assert [p.name for p in retriever.plan("What about Pudong?").elsewhere] == ["Pudong"]


def test_glossary_carries_terms_across_languages():
    g = Glossary([{"en": ["intellectual property", "IP"], "zh": ["知识产权"]}, {"en": [""], "zh": ["空"]}])
    assert len(g) == 1
    assert g.expand(normalize_for_index("How is IP protected?")) == ["知识产权"]
    assert g.expand(normalize_for_index("Patents for shipping")) == []  # "ip" is not a word of "shipping"
    assert g.expand("知识产权保护") == ["intellectual property", "ip"]


# ---------------------------------------------------------------- tokenizer
def test_tokenize_chinese_and_english():
    tokens = tokenize("支持企业知识产权 protection of patents")
    assert {"知识产权", "支持", "企业", "protect", "patent"} <= set(tokens)
    assert "of" not in tokens


def test_tokenize_stems_and_drops_stop_words():
    assert tokenize("protecting protection protected") == ["protect", "protect", "protect"]
    assert tokenize("what is the a an of") == []
    assert tokenize("我们 的 公司 怎么 申请 补贴") == ["申请", "补贴"]
    assert tokenize("x y z") == []  # single letters carry nothing


def test_tokenize_keeps_numbers_and_apostrophes():
    tokens = tokenize(normalize_for_index("Jing’an 12345 hotline 2.0"))
    assert "jing'an" in tokens and "12345" in tokens and "2.0" in tokens


def test_traditional_and_simplified_tokenize_alike():
    assert tokenize(normalize_for_index("知識產權保護")) == tokenize(normalize_for_index("知识产权保护"))
    assert tokenize(normalize_for_index("ＰＡＴＥＮＴＳ")) == tokenize("patents")


# ---------------------------------------------------------------- wiring
def test_open_retriever_checks_the_embedder(fake_index_dir, tmp_path):
    from assistant.config import Settings

    class OtherFake:
        id = "other-fake:8"
        dim = 8

    with pytest.raises(IndexLoadError, match="built with embedder 'fake-hash:256'.*jxa index build"):
        open_retriever(Settings(index_dir=fake_index_dir, embedder="fake-hash"), OtherFake())
    assert len(open_retriever(Settings(index_dir=fake_index_dir, embedder="fake-hash")).search("patents", k=2)) == 2
    with pytest.raises(IndexLoadError, match="no index in"):
        open_retriever(Settings(index_dir=tmp_path / "none", embedder="fake-hash"))


def test_unknown_embedder_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown embedder 'bogus'"):
        get_embedder("bogus")
