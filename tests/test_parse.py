"""Structure parsed from the seed documents: measure counts, ids, labels, departments and metadata."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from assistant.corpus.catalog import CatalogEntry, load_catalog
from assistant.corpus.chunk import chunk_measures
from assistant.corpus.parse import parse_document
from assistant.errors import CorpusError
from assistant.retrieval.build import parse_seeds

SEEDS = Path(__file__).resolve().parents[1] / "seeds"

EXPECTED_MEASURES = {
    "jingan-2026": 33,
    "jingan-industry-2024": 45,
    "zhangjiang-jingan-2025": 24,
    "xuhui-2026": 22,
    "shanghai-2024": 28,
}


@pytest.fixture(scope="module")
def parsed():
    return {p.document.doc_id: p for p in parse_seeds(SEEDS)}


@pytest.fixture(scope="module")
def measures(parsed):
    return {m.measure_id: m for p in parsed.values() for m in p.measures}


def test_measure_counts_per_document(parsed):
    assert {doc_id: len(p.measures) for doc_id, p in parsed.items()} == EXPECTED_MEASURES
    assert sum(len(p.measures) for p in parsed.values()) == 152


def test_measure_ids_are_unique_and_name_their_document(parsed):
    ids = [m.measure_id for p in parsed.values() for m in p.measures]
    assert len(ids) == len(set(ids))
    for doc_id, p in parsed.items():
        assert all(m.measure_id.startswith(doc_id + "#") and m.doc_id == doc_id for m in p.measures)
        assert all(m.text.strip() and m.label for m in p.measures)


@pytest.mark.parametrize("measure_id, label_start, in_text", [
    ("jingan-2026#I.1", "Jing'an 2026 Business Environment Action Plan, Measure 1 — Deepening the \"One Thing\" Reform",
     "one thing for opening a store"),
    ("jingan-2026#II.12", "Jing'an 2026 Business Environment Action Plan, Measure 12 — Protecting Intellectual Property Rights",
     "intellectual property"),
    ("jingan-2026#V.33", "Jing'an 2026 Business Environment Action Plan, Measure 33 — Breaking Through the Element Bottlenecks",
     "international talents"),
    ("jingan-industry-2024#I.1", "Jing'an 2024 Measures for High-Quality Industrial Development, Measure 1 — Focusing on key areas",
     "In line with the industrial development foundation"),
    ("jingan-industry-2024#IV.41", "Jing'an 2024 Measures for High-Quality Industrial Development, Measure 41 — Strengthening the "
     "introduction, cultivation, and service guarantee of talents", "housing, residency registration"),
    ("xuhui-2026#II.8", "徐汇区2026年营商环境行动方案 第8项 知识产权", "知識產權"),
    ("xuhui-2026#I.1", "徐汇区2026年营商环境行动方案 第1项 政务服务", "12345市民服務熱線"),
    ("shanghai-2024#I.1", "上海市持续打造国际一流营商环境行动方案 一(一) 市场准入", "全面推广“一企、一照、一码”应用"),
])
def test_ids_labels_and_text(measures, measure_id, label_start, in_text):
    m = measures[measure_id]
    assert m.label.startswith(label_start)
    assert in_text in m.text


def test_measure_title_is_split_from_its_text(measures):
    m = measures["jingan-industry-2024#I.1"]
    assert m.title == "Focusing on key areas"
    assert m.text.startswith("In line with the industrial development foundation of Jing’an District")
    sh = measures["shanghai-2024#I.1"]
    assert sh.title == "市场准入"
    assert sh.text.startswith("系统提升“上海企业登记在线”服务品质，同步集成个体工商户")


def test_section_paths(measures):
    assert measures["jingan-2026#II.12"].section_path == (
        "II. Action to Create Fair and Just Market Competition Environment",)
    assert measures["xuhui-2026#II.8"].section_path == ("二、打造公平公正的市場競爭環境",)
    assert measures["shanghai-2024#I.1"].section_path == ("一、对标改革提升行动",)


def test_zhangjiang_labels_name_the_section(parsed):
    labels = [m.label for m in parsed["zhangjiang-jingan-2025"].measures]
    # Numbering restarts per section there, so every label carries its section.
    assert len(set(labels)) == len(labels)
    assert all(", I. " in lb or ", II. " in lb or ", III. " in lb or ", IV. " in lb or ", V. " in lb for lb in labels)


def test_departments(measures):
    assert measures["jingan-industry-2024#IV.41"].departments == ("Jing’an District Talent Bureau",)
    assert measures["jingan-industry-2024#IV.40"].departments == ("Jing’an District Technology and Economy Commission",)
    first = measures["jingan-industry-2024#II.1"].departments
    assert first[0] == "Jing’an District Commerce Commission"
    assert first[-1] == "Jing’an District Investment Office"
    assert len(first) == 8
    assert "(Responsible" not in measures["jingan-industry-2024#IV.41"].text
    assert measures["jingan-2026#II.12"].departments == ()
    assert measures["jingan-industry-2024#I.1"].departments == ()
    assert measures["jingan-industry-2024#II.1"].section_path == (
        "II. Supporting Industry Agglomeration and Capacity Upgrading", "(I) Promoting the development of industrial clusters")


def test_document_metadata(parsed):
    docs = {doc_id: p.document for doc_id, p in parsed.items()}
    assert docs["jingan-industry-2024"].doc_number == "JDDRC D (2024) No.18"
    assert docs["zhangjiang-jingan-2025"].doc_number == "JDPG G [2025] No. 5"
    assert docs["shanghai-2024"].doc_number == "沪府办发〔2024〕1号"
    assert docs["jingan-2026"].doc_number is None
    assert docs["xuhui-2026"].doc_number is None

    assert docs["jingan-industry-2024"].issued == date(2024, 12, 9)
    assert docs["zhangjiang-jingan-2025"].issued == date(2025, 4, 18)
    assert docs["jingan-2026"].issued == date(2026, 3, 12)
    assert docs["xuhui-2026"].issued == date(2026, 1, 23)
    assert docs["shanghai-2024"].issued == date(2024, 1, 13)

    assert docs["jingan-industry-2024"].valid_until == date(2025, 12, 31)
    assert "December 31, 2025" in docs["jingan-industry-2024"].validity_text
    assert all(docs[d].valid_until is None for d in docs if d != "jingan-industry-2024")

    assert docs["shanghai-2024"].issuer == "上海市人民政府办公厅"
    assert docs["xuhui-2026"].issuer == "上海市徐汇区人民政府办公室"  # simplified from the traditional text
    assert docs["jingan-2026"].issuer == "General Office of Jing'an District People's Government of Shanghai Municipality"
    assert "Jing’an District Development and Reform Commission" in docs["jingan-industry-2024"].issuer
    assert docs["zhangjiang-jingan-2025"].issuer == "Jing'an District People's Government"  # from the catalog

    assert docs["xuhui-2026"].title == "徐汇区加快打造国际一流营商环境行动方案(2026年)"
    assert docs["jingan-industry-2024"].title == "Several Measures of Jing'an District on Promoting High-Quality Industrial Development"
    assert {d.language for d in docs.values()} == {"en", "zh"}
    assert docs["xuhui-2026"].language == docs["shanghai-2024"].language == "zh"
    assert docs["xuhui-2026"].district == "Xuhui" and docs["shanghai-2024"].district == "Shanghai"


def test_chunks_cover_every_measure_and_index_text_is_simplified(parsed):
    p = parsed["xuhui-2026"]
    chunks = chunk_measures(p.document, list(p.measures))
    assert {c.measure_id for c in chunks} == {m.measure_id for m in p.measures}
    ip = next(c for c in chunks if c.measure_id == "xuhui-2026#II.8")
    assert "知识产权" in ip.index_text and "知識產權" not in ip.index_text
    assert "知識產權" in ip.text  # display text keeps the original script


def test_long_measures_are_split_with_header_repeated(parsed):
    p = parsed["zhangjiang-jingan-2025"]
    chunks = chunk_measures(p.document, list(p.measures))
    by_measure: dict[str, list] = {}
    for c in chunks:
        by_measure.setdefault(c.measure_id, []).append(c)
    split = [cs for cs in by_measure.values() if len(cs) > 1]
    assert len(by_measure["zhangjiang-jingan-2025#II.3"]) == 3
    whole = by_measure["zhangjiang-jingan-2025#II.3"]
    measure = next(m for m in p.measures if m.measure_id == "zhangjiang-jingan-2025#II.3")
    # Split on sentence boundaries: nothing lost, nothing repeated except the header.
    parts = [c.text.split("\n", 1)[1] for c in whole]
    assert " ".join(parts) == measure.text
    for cs in split:
        label = next(m.label for m in p.measures if m.measure_id == cs[0].measure_id)
        assert all(c.text.startswith(label) for c in cs)
        assert [c.chunk_id for c in cs][1:] == [f"{cs[0].measure_id}~{i}" for i in range(2, len(cs) + 1)]


# ---------------------------------------------------------------- bad input
ENTRY = CatalogEntry(doc_id="test-doc", district="Jing'an", short_title_en="Test", short_title_zh="测试",
                     title="Test Measures")


def test_empty_document_is_a_corpus_error():
    with pytest.raises(CorpusError, match=r"empty\.txt: the document is empty"):
        parse_document("  \n\u3000\n", "empty.txt", ENTRY)


def test_document_without_measures_is_a_corpus_error():
    with pytest.raises(CorpusError, match="no numbered headings found"):
        parse_document("A letter.\nIt has no numbered measures at all.\n", "letter.txt", ENTRY)


def test_heading_without_text_is_a_corpus_error():
    with pytest.raises(CorpusError, match="measure 2 .* has no text"):
        parse_document("I. Tasks\n1. First. It has text.\n2. Second\n", "bad.txt", ENTRY)


def test_small_document_parses_with_catalog_title():
    p = parse_document("(May 1, 2025)\nI. Tasks\n1. Helping start-ups. We shall help.\n", "ok.txt", ENTRY)
    assert p.document.title == "Test Measures"
    assert p.document.issued == date(2025, 5, 1)
    assert [m.measure_id for m in p.measures] == ["test-doc#I.1"]


def _seeds_with(tmp_path: Path, catalog: str | None, files: dict[str, str]) -> Path:
    d = tmp_path / "seeds"
    d.mkdir()
    if catalog is not None:
        (d / "catalog.json").write_text(catalog, encoding="utf-8")
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
    return d


@pytest.mark.parametrize("catalog, message", [
    ("{not json", "is not a valid catalog"),
    ('{"docs": {}}', "is not a valid catalog"),
    ('{"documents": {"a.txt": {"doc_id": "ab", "colour": "red"}}}', "entry for a.txt"),
    ('{"documents": {"a.txt": {"doc_id": "Bad Id!", "district": "x", "short_title_en": "x", "short_title_zh": "x"}}}',
     "must be lower-case"),
    ('{"documents": {"a.txt": {"doc_id": "same", "district": "x", "short_title_en": "x", "short_title_zh": "x"},'
     ' "b.txt": {"doc_id": "same", "district": "x", "short_title_en": "x", "short_title_zh": "x"}}}', "used twice"),
])
def test_malformed_catalog_is_a_corpus_error(tmp_path, catalog, message):
    seeds = _seeds_with(tmp_path, catalog, {})
    with pytest.raises(CorpusError, match=message) as info:
        load_catalog(seeds)
    assert "catalog.json" in str(info.value)


def test_documents_without_catalog_get_their_metadata_from_the_text(tmp_path):
    text = "浦江区人民政府办公室关于印发《浦江区支持企业发展若干措施》的通知\n一、支持研发\n对企业给予50万元补贴。\n"
    seeds = _seeds_with(tmp_path, None, {"a.txt": text})
    (doc,) = [p.document for p in parse_seeds(seeds)]
    assert doc.title == "浦江区支持企业发展若干措施"
    assert doc.issuer == "浦江区人民政府办公室" and doc.district == "Pujiang"
    assert doc.doc_id.startswith("pujiang-") and doc.short_title_zh == doc.title


def test_catalog_entry_overrides_only_what_it_names(tmp_path):
    catalog = json.dumps({"documents": {"new.txt": {"doc_id": "lakeside-grants", "district": "Lakeside"}}})
    text = "Measures of Riverside County on Small Grants\nI. Grants\n1. Start-ups. We grant 50,000 yuan.\n"
    seeds = _seeds_with(tmp_path, catalog, {"new.txt": text, "other.txt": text.replace("Small", "Large")})
    docs = {p.document.source_file: p.document for p in parse_seeds(seeds)}
    assert docs["new.txt"].doc_id == "lakeside-grants" and docs["new.txt"].district == "Lakeside"
    assert docs["other.txt"].district == "Riverside"
    assert docs["other.txt"].title == "Measures of Riverside County on Large Grants"


def test_two_documents_with_one_id(tmp_path):
    text = "Rules of Lakeside District on Small Grants\nI. Tasks\n1. First task. Its text.\n"
    seeds = _seeds_with(tmp_path, None, {"a.txt": text, "b.txt": text})
    with pytest.raises(CorpusError, match="b.txt and a.txt both have the id 'lakeside-.*catalog.json"):
        parse_seeds(seeds)


def test_non_utf8_document(tmp_path):
    entry = {"doc_id": "gb", "district": "x", "short_title_en": "x", "short_title_zh": "x", "title": "t"}
    seeds = _seeds_with(tmp_path, json.dumps({"documents": {"gb.txt": entry}}), {})
    (seeds / "gb.txt").write_bytes("一、任务\n1.支持企业。\n".encode("gb18030"))
    with pytest.raises(CorpusError, match="not UTF-8.*iconv"):
        parse_seeds(seeds)


def test_empty_seed_file_in_folder(tmp_path):
    entry = {"doc_id": "empty", "district": "x", "short_title_en": "x", "short_title_zh": "x"}
    seeds = _seeds_with(tmp_path, json.dumps({"documents": {"empty.txt": entry}}), {"empty.txt": ""})
    with pytest.raises(CorpusError, match="empty.txt: the document is empty"):
        parse_seeds(seeds)


def test_seeds_folder_without_documents(tmp_path):
    seeds = _seeds_with(tmp_path, json.dumps({"documents": {}}), {})
    with pytest.raises(CorpusError, match=r"no policy documents \(\*\.txt\)"):
        parse_seeds(seeds)
    with pytest.raises(CorpusError, match="seeds folder .*nowhere does not exist"):
        parse_seeds(tmp_path / "nowhere")
