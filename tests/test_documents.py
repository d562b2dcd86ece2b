"""The test documents under tests/documents/, one per structure and format, each parsed to its
expected measures and metadata; and the seeds, parsed to exactly the committed index's corpus."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from assistant.corpus.chunk import chunk_measures
from assistant.corpus.parse import parse_document
from assistant.corpus.read import read_document, rejoin_pdf_lines
from assistant.errors import CorpusError
from assistant.retrieval import store
from assistant.retrieval.build import bridge_text, load_bridge, parse_seeds, without_instructions

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "tests" / "documents"


@dataclass(frozen=True)
class Expected:
    file: str
    language: str
    title: str
    doc_number: str | None
    issuer: str
    district: str
    issued: date
    effective: date | None
    valid_until: date | None
    ids: tuple[str, ...]  # measure ids after the '#'
    labels: dict[str, str]  # id -> label (after the short title)
    departments: dict[str, tuple[str, ...]]
    texts: dict[str, str]  # id -> a phrase of its text


EXPECTED = [
    Expected("qinglan-articles.txt", "zh", "青澜区促进中小企业高质量发展若干措施", "青府办发〔2026〕3号", "青澜区人民政府办公室",
             "Qinglan", date(2026, 2, 10), date(2026, 3, 1), date(2028, 12, 31),
             tuple(str(i) for i in range(1, 13)),
             {"1": "第一条", "3": "第三条 创业场地补贴", "9": "第九条 上市培育", "12": "第十二条"},
             {"3": ("区科技局", "区财政局"), "10": ("区人力资源和社会保障局", "区住房保障局"), "11": ()},
             {"3": "每家企业每年最高10万元", "9": "成功上市的奖励300万元", "12": "有效期至2028年12月31日"}),
    Expected("wanghu-inline.txt", "zh", "望湖区商务委员会关于支持商贸流通企业发展的若干措施", None, "望湖区商务委员会",
             "Wanghu", date(2026, 3, 15), date(2026, 4, 1), date(2029, 3, 31),
             tuple(str(i) for i in range(1, 9)),
             {"1": "第一项 支持品牌首店落户", "4": "第四项", "8": "第八项 优化营商服务"}, {},
             {"1": "亚洲首店、全国首店", "4": "支持商贸企业做大做强", "7": "给予一次性奖励20万元"}),
    Expected("qiyun-innovation-vouchers.docx", "zh", "栖云区科技创新券实施细则", "栖科发〔2026〕7号", "江澜市栖云区科学技术委员会",
             "Qiyun", date(2026, 4, 20), date(2026, 5, 1), date(2028, 4, 30),
             ("I.1", "I.2", "II.1.1", "II.1.2", "II.2", "II.3", "III.1", "III.2", "4", "5"),
             {"II.1.1": "二(一)1 科技型中小企业", "II.2": "二(二) 使用范围", "4": "第四项 监督管理"},
             {"II.3": ("区科委", "区财政局")},
             {"II.2": "(3)知识产权分析评议服务", "II.1.2": "最高50万元", "5": "有效期为两年"}),
    Expected("dongyu-traditional.txt", "zh", "东屿区支持文化创意产业发展若干政策", "东府办〔2026〕5号", "东屿区人民政府办公室",
             "Dongyu", date(2026, 1, 8), None, date(2028, 12, 31),
             ("I.1", "I.2", "II.3", "II.4", "III.5", "III.6"),
             {"I.1": "第1项 影视作品奖励", "III.6": "第6项 展会交流"}, {},
             {"I.1": "每部給予最高100萬元獎勵", "II.4": "最高50萬元"}),
    Expected("lakeside-articles.txt", "en", "Interim Measures of Lakeside District for Supporting Green and Low-Carbon "
             "Enterprises", "LDPG [2026] No. 12", "Lakeside District People's Government", "Lakeside",
             date(2026, 2, 6), date(2026, 3, 1), date(2029, 2, 28), tuple(str(i) for i in range(1, 10)),
             {"1": "Article 1", "3": "Article 3 — Energy-saving retrofits", "9": "Article 9"},
             {"5": ("Lakeside District Economy and Information Technology Commission", "Lakeside District Finance Bureau"),
              "7": ()},
             {"4": "RMB 0.1 per kilowatt-hour", "2": "not eligible", "6": "interest discount of 30%"}),
    Expected("lakeside-articles-2023.txt", "en", "Interim Measures of Lakeside District for Supporting Green and "
             "Low-Carbon Enterprises", "LDPG [2023] No. 4", "Lakeside District People's Government", "Lakeside",
             date(2023, 2, 10), date(2023, 3, 1), date(2026, 2, 28), tuple(str(i) for i in range(1, 7)),
             {"4": "Article 4 — Rooftop solar power", "6": "Article 6"}, {"5": ("Lakeside District Economy and "
                                                                                 "Information Technology Commission",)},
             {"4": "RMB 0.05 per kilowatt-hour"}),
    Expected("riverside-manufacturing.pdf", "en", "Several Measures of Riverside District on Supporting Advanced "
             "Manufacturing", "RDPG [2025] No. 21", "Riverside District People's Government", "Riverside",
             date(2025, 11, 20), date(2026, 1, 1), date(2028, 12, 31),
             ("I.1", "I.2", "I.3", "II.4", "II.5", "II.6", "III.7", "III.8", "IV.9"),
             {"I.1": "Measure 1 — Supporting new projects", "III.8": "Measure 8 — Industrial internet"}, {},
             {"I.1": "up to RMB 10 million per project", "III.8": "serving more than 100 enterprises shall receive"}),
    # Written after the unseen-documents suite, to check the parser beyond the structures it was built on:
    # a one-sentence article, Chinese-numeral dates, "有效期五年"; an issue line under the title; Section N.
    Expected("songling-articles.txt", "zh", "松岭区支持数字经济发展办法", "松府规〔2025〕2号", "松岭区人民政府",
             "Songling", date(2025, 6, 18), date(2025, 7, 1), date(2030, 6, 30), tuple(str(i) for i in range(1, 9)),
             {"2": "第二条", "3": "第三条 算力补贴", "5": "第五条 应用场景"}, {},
             {"2": "具有独立法人资格的数字经济企业", "5": "(二)培育类项目，给予最高20万元奖励", "6": "每人每月3000元"}),
    Expected("beihu-issued-line.txt", "zh", "北湖区关于促进文旅消费的若干措施", None, "北湖区人民政府办公室",
             "Beihu", date(2026, 1, 20), None, date(2027, 12, 31), ("I.1", "I.2", "II.3", "II.4", "III.5"),
             {"I.2": "一(二) 培育特色民宿", "III.5": "三(五)"}, {},
             {"I.1": "一次性奖励300万元、100万元", "III.5": "统筹安排"}),
    Expected("elmford-sections.txt", "en", "Measures of Elmford District for Supporting Cross-Border E-Commerce",
             "EDCB [2026] No. 5", "Elmford District Commerce Bureau", "Elmford", date(2026, 2, 12),
             date(2026, 3, 1), date(2029, 2, 28), tuple(str(i) for i in range(1, 6)),
             {"1": "Section 1 — Scope", "3": "Section 3 — Platform fees"}, {},
             {"2": "up to RMB 500,000 a year", "5": "from April 1 to April 30"}),
    Expected("elmford-exhibitions.md", "en", "Measures of Elmford District for Supporting Exhibition Services",
             "EDCB [2026] No. 7", "Elmford District Commerce Bureau", "Elmford", date(2026, 3, 3),
             date(2026, 4, 1), date(2028, 3, 31), ("1", "2", "3"),
             {"1": "Measure 1 — Exhibition subsidies", "3": "Measure 3 — Application"}, {},
             {"1": "Bureau shall receive a subsidy of 50% of the booth fee", "2": "RMB 200,000"}),
    Expected("harbourview-notice.html", "en", "Measures of Harbourview District on Attracting and Retaining Talents",
             "HDGO [2026] No. 2", "General Office of Harbourview District People's Government", "Harbourview",
             date(2026, 1, 15), None, date(2027, 12, 31),
             ("I.1", "I.2", "I.3", "II.1", "II.2", "II.3", "III.1", "III.2"),
             {"I.1": "I. Talent Attraction, Measure (1) — Settlement allowance",
              "III.2": "III. Service Guarantee, Measure (2) — Application"}, {},
             {"I.1": "RMB 100,000", "II.1": "2,000 talent apartments"}),
]


@pytest.fixture(scope="module")
def parsed():
    return {e.file: parse_document(read_document(DOCS / e.file), e.file) for e in EXPECTED}


@pytest.mark.parametrize("e", EXPECTED, ids=lambda e: e.file)
def test_metadata(parsed, e):
    d = parsed[e.file].document
    assert (d.language, d.title, d.doc_number, d.issuer, d.district) == (
        e.language, e.title, e.doc_number, e.issuer, e.district)
    assert (d.issued, d.effective, d.valid_until) == (e.issued, e.effective, e.valid_until)
    assert d.validity_text and ("有效期" in d.validity_text or "valid" in d.validity_text)
    assert d.doc_id.startswith(e.district.lower() + "-")
    if e.language == "zh":  # an English answer names it without Chinese characters
        assert d.short_title_en.startswith(f"{e.district} District policy of ") and d.short_title_zh == e.title
    else:
        assert d.short_title_en == d.short_title_zh == e.title


@pytest.mark.parametrize("e", EXPECTED, ids=lambda e: e.file)
def test_measures(parsed, e):
    p = parsed[e.file]
    by_id = {m.measure_id.split("#", 1)[1]: m for m in p.measures}
    assert tuple(by_id) == e.ids
    short = p.document.short_title_zh if e.language == "zh" else p.document.short_title_en
    for mid, label in e.labels.items():
        glue = " " if e.language == "zh" else ", "
        assert by_id[mid].label == f"{short}{glue}{label}"
    for mid, departments in e.departments.items():
        assert by_id[mid].departments == departments
    for mid, phrase in e.texts.items():
        assert phrase in by_id[mid].text
    for m in p.measures:  # nothing of the notice, signature or attachments inside a measure
        assert not any(x in m.text for x in ("印发给你们", "附件", "Annex", "hereby issued", "(责任单位", "(Responsible"))
    assert chunk_measures(p.document, list(p.measures))


def test_attachments_and_closing_are_reported(parsed):
    assert any("attachments" in w for w in parsed["qinglan-articles.txt"].warnings)
    assert any("attachments" in w for w in parsed["harbourview-notice.html"].warnings)


def test_html_page_furniture_is_not_read():
    text = read_document(DOCS / "harbourview-notice.html")
    assert "tracking" not in text and "Home" not in text and "font-family" not in text


def test_pdf_lines_are_rejoined_across_pages_and_page_numbers_dropped():
    text = read_document(DOCS / "riverside-manufacturing.pdf")
    assert "- 1 -" not in text
    line = next(ln for ln in text.splitlines() if ln.startswith("8. Industrial internet"))
    assert line.endswith("up to RMB 2 million.")  # this paragraph runs over the page break
    pages = [["1. A first line that runs all the way to the width of the", "page and ends here.", "- 1 -"],
             ["II. Heading", "short"]]
    assert rejoin_pdf_lines(pages) == ["1. A first line that runs all the way to the width of the page and ends here.",
                                       "II. Heading", "short"]


def test_document_without_structure_shows_what_was_found():
    with pytest.raises(CorpusError) as info:
        parse_document(read_document(DOCS / "no-structure.txt"), "no-structure.txt")
    message = str(info.value)
    assert "no numbered headings found" in message and "第X条" in message
    assert "政策宣讲会的通知" in message and "in 6 lines" in message


@pytest.mark.parametrize("name, content, message", [
    ("a.odt", b"x", "unsupported format .odt"),
    ("a.pdf", b"%PDF-1.4 not really", "could not be read as PDF"),
    ("a.docx", b"PK\x03\x04 broken", "could not be read as DOCX"),
    ("a.txt", "一、任务".encode("gb18030"), "not UTF-8"),
    ("a.html", b"<html><script>x()</script></html>", "no text found"),
])
def test_unreadable_files_are_corpus_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=message):
        read_document(path)


def test_validity_counted_from_the_effective_date():
    text = ("望湖区商务委员会关于促进会展业发展的若干措施\n一、支持展会。对展会给予10万元补贴。\n"
            "本措施自2026年3月1日起施行，有效期五年。\n")
    d = parse_document(text, "t.txt").document
    assert d.effective == date(2026, 3, 1) and d.valid_until == date(2031, 2, 28)
    en = ("Measures of Lakeside District on Exhibitions\nI. Support\n1. Exhibitions. A grant of RMB 100,000.\n"
          "These Measures shall come into effect on July 1, 2026 and be valid for 2 years.\n")
    d = parse_document(en, "t.txt").document
    assert d.effective == date(2026, 7, 1) and d.valid_until == date(2028, 6, 30)


def test_many_articles_of_one_length_are_not_taken_for_wrapped_pdf_lines():
    articles = "\n".join(f"第{n}条 对符合条件的企业给予一次性奖励{i:02d}万元，每家企业每年最高申报一次，由区经委负责审核。"
                         for i, n in enumerate("一二三四五六七八九十", 1))
    articles += "\n" + "\n".join(f"第十{n}条 对符合条件的企业给予一次性奖励{i:02d}万元，每家企业每年最高申报一次，由区经委负责审核。"
                                   for i, n in enumerate("一二三四五六七八九", 11))
    p = parse_document("望湖区支持企业发展若干措施\n" + articles + "\n", "t.txt")
    assert len(p.measures) == 19 and p.measures[-1].measure_id.endswith("#19")


def test_generated_scale_documents_parse():
    import random

    from assistant.evaluation.scale import _en_document, _zh_document

    for make in (_zh_document, _en_document):
        p = parse_document(make(random.Random(3), 5, 20), "g.txt")
        assert len(p.measures) == 20 and p.document.issuer and p.document.issued and p.document.valid_until


def test_seeds_parse_to_the_committed_index_byte_for_byte():
    """The committed index was built from this parser's output: any change to parsing of the seeds
    shows here first."""
    seeds = ROOT / "seeds"
    parsed = [without_instructions(p)[0] for p in parse_seeds(seeds)]
    bridge = {k: bridge_text(v) for k, v in load_bridge(seeds).items()}
    chunks = [c for p in parsed for c in chunk_measures(p.document, list(p.measures), bridge)]
    text = store.corpus_json([p.document for p in parsed], [m for p in parsed for m in p.measures], chunks)
    assert text == (ROOT / "index" / "corpus.json").read_text(encoding="utf-8")
