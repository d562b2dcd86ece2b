"""Facts (numbers in any notation, quoted names) and the sentence verifier."""

from __future__ import annotations

import pytest
from conftest import FakeEmbedder

from assistant.answering import facts
from assistant.answering.verify import Evidence, Verifier, split_sentences
from assistant.retrieval.store import load_index


# ---------------------------------------------------------------- numbers
@pytest.mark.parametrize("a, b", [
    ("175 billion yuan", "1750亿元"),
    ("175 billion yuan", "１７５０亿"),
    ("1750亿元", "一千七百五十亿元"),
    ("30 days", "三十天"),
    ("5万元", "50,000 yuan"),
    ("50 thousand", "5万"),
    ("1.5 million", "150万"),
    ("2 trillion", "2万亿"),
    ("2025年", "二〇二五年"),
    ("3 years", "三年"),
    ("１２３４５", "12345"),
    ("1,000,000", "一百万"),
])
def test_numbers_in_any_notation_are_one_value(a, b):
    assert facts.numbers(a) == facts.numbers(b) != set()


@pytest.mark.parametrize("text, values", [
    ("最高补贴500万元", {5_000_000.0}),  # glued to the characters around it, as Chinese prints it
    ("有效期至2025年12月31日", {2025.0, 12.0, 31.0}),
    ("5千万元", {50_000_000.0}),
    ("地区生产总值达到1750亿元", {175_000_000_000.0}),
    ("version v2", set()),
])
def test_numbers_inside_chinese_text(text, values):
    assert facts.numbers(text) == values


def test_different_numbers_differ():
    assert facts.numbers("175 billion yuan") != facts.numbers("175 million yuan")
    assert facts.numbers("1750亿元") != facts.numbers("175亿元")
    assert facts.numbers("三十") != facts.numbers("三百")


@pytest.mark.parametrize("text, value", [
    ("一百七十五亿", 17_500_000_000), ("三十", 30), ("十五", 15), ("二〇二五", 2025), ("两万", 20_000),
    ("一千零五", 1005), ("三亿五千万", 350_000_000),
])
def test_cn_to_int(text, value):
    assert facts.cn_to_int(text) == value


def test_numbers_ignore_markers_and_lone_yi():
    assert facts.numbers("Start-ups get free space [1][2, 3].") == set()
    assert facts.numbers("推行“一网通办”服务") == set()  # "一" as a word, not a count
    assert facts.numbers("一个窗口") == {1.0}
    assert facts.numbers("rates of 5.5% and 12") == {5.5, 12.0}


def test_markers_and_quoted_names():
    assert facts.markers("A [1]. B [2, 3]. C [2]") == [1, 2, 3, 2]
    assert facts.strip_markers("Free space [1].") == "Free space ."
    assert facts.quoted_names('the “Policy Calendar” and "Suishendui" and “x”') == {"policy calendar", "suishendui"}
    assert facts.quoted_names("依托「政策公開講」机制") == {"政策公开讲"}


def test_split_sentences_keeps_markers_with_their_sentence():
    assert split_sentences("One is 2.5 km. [1] Two [2]. 三是这样。[3]四[1][2]。") == [
        "One is 2.5 km. [1]", "Two [2].", "三是这样。[3]", "四[1][2]。"]
    assert split_sentences("First line\nSecond line [1].") == ["First line", "Second line [1]."]


def test_split_sentences_keeps_abbreviations_and_document_numbers_whole():
    assert split_sentences("Under JDPG G [2025] No. 5, the park grows [3]. It gives guidance (e.g. on data) [1].") == [
        "Under JDPG G [2025] No. 5, the park grows [3].", "It gives guidance (e.g. on data) [1]."]
    assert split_sentences("See JDDRC D (2024) No.18 [2]. Next one.") == ["See JDDRC D (2024) No.18 [2].", "Next one."]


# ---------------------------------------------------------------- verifier
@pytest.fixture(scope="module")
def data(fake_index_dir):
    return load_index(fake_index_dir)


def _evidence(data, *measure_ids: str) -> list[Evidence]:
    out = []
    for n, mid in enumerate(measure_ids, 1):
        m = data.measures[mid]
        out.append(Evidence(n, m, data.documents[m.doc_id], m.text))
    return out


@pytest.fixture(scope="module")
def zhangjiang_target(data):
    """The Zhangjiang measure that states '175 billion yuan'."""
    return next(m.measure_id for m in data.measures.values() if "175 billion yuan" in m.text)


def test_keeps_a_correct_sentence(data, zhangjiang_target):
    ev = _evidence(data, "jingan-2026#II.12", zhangjiang_target)
    m = data.measures[zhangjiang_target]
    sentence = "The regional gross product of the park shall reach 175 billion yuan [2]."
    assert "regional gross product" in m.text
    result = Verifier(ev).check(sentence)
    assert [(s.kept, s.cited) for s in result.sentences] == [(True, [2])]
    assert result.kept[0].text.endswith("[2].")


def test_same_number_in_other_notation_is_kept(data, zhangjiang_target):
    ev = _evidence(data, zhangjiang_target)
    result = Verifier(ev).check("The regional gross product shall reach 1750亿 yuan [1].")
    assert result.sentences[0].kept


def test_drops_a_number_not_in_the_cited_measure(data, zhangjiang_target):
    ev = _evidence(data, "jingan-2026#II.12", zhangjiang_target)
    result = Verifier(ev).check("The regional gross product of the park shall reach 200 billion yuan [2].")
    (s,) = result.sentences
    assert not s.kept and "2e+11" in s.reason and zhangjiang_target in s.reason


def test_drops_a_subsidy_amount_no_measure_states(data):
    ev = _evidence(data, "jingan-2026#II.12")
    result = Verifier(ev).check("Enterprises protecting intellectual property rights receive 500,000 yuan [1].")
    assert not result.sentences[0].kept
    assert "500000" in result.sentences[0].reason


def test_drops_a_sentence_citing_a_measure_not_shown(data):
    ev = _evidence(data, "jingan-2026#II.12")
    text = data.measures["jingan-2026#II.12"].text.split(".")[0]
    result = Verifier(ev).check(f"{text} [4].")
    (s,) = result.sentences
    assert not s.kept and s.reason == "cites [4], not shown"


def test_drops_an_uncited_sentence_that_is_not_strongly_supported(data):
    ev = _evidence(data, "jingan-2026#II.12", "jingan-2026#I.1")
    result = Verifier(ev).check("Every company also gets free lunches and a company car.")
    (s,) = result.sentences
    assert not s.kept and s.reason == "no citation"


def test_attributes_an_uncited_sentence_one_measure_clearly_backs(data):
    ev = _evidence(data, "jingan-2026#I.1", "jingan-2026#II.12")
    sentence = data.measures["jingan-2026#II.12"].text.split(". ")[0]
    result = Verifier(ev).check(sentence + ".")
    (s,) = result.sentences
    assert s.kept and s.cited == [2] and s.reason == "attributed" and s.text.endswith("[2].")


def test_a_wrong_marker_moves_to_the_measure_that_backs_the_sentence(data):
    ev = _evidence(data, "jingan-2026#I.1", "jingan-2026#II.12")
    sentence = data.measures["jingan-2026#II.12"].text.split(". ")[0]
    result = Verifier(ev).check(f"{sentence} [1].")
    (s,) = result.sentences
    assert s.kept and s.cited == [2]


def test_unsupported_content_is_dropped_even_with_a_valid_marker(data):
    ev = _evidence(data, "jingan-2026#II.12")
    result = Verifier(ev).check("Restaurants may open terraces on weekends and sell fireworks [1].")
    reason = result.sentences[0].reason
    assert not result.sentences[0].kept and ("not supported" in reason or "mostly says" in reason), reason


def test_quoted_programme_must_be_in_the_measure(data):
    ev = _evidence(data, "jingan-2026#I.2")
    real = Verifier(ev).check("We shall continuously release the “Policy Calendar” for one-stop inquiry [1].")
    fake = Verifier(ev).check("We shall continuously release the “Golden Dragon Fund” for one-stop inquiry [1].")
    assert real.sentences[0].kept
    assert not fake.sentences[0].kept and "golden dragon fund" in fake.sentences[0].reason


def test_cross_lingual_support_uses_the_embedding(data):
    """A Chinese sentence about an English measure shares no words with it; the embedding decides."""
    ev = _evidence(data, "jingan-2026#II.12")
    m = data.measures["jingan-2026#II.12"]
    sentence = "静安区加强知识产权保护[1]。"
    assert not Verifier(ev).check(sentence).sentences[0].kept  # words only: no support
    close = Verifier(ev, embed=lambda texts: FakeEmbedder().embed_passages([m.text for _ in texts]))
    assert close.check(sentence).sentences[0].kept


def test_similarity_alone_needs_the_sentence_aligned_with_the_cited_measure(data):
    """Near the whole measure is not enough when another measure holds the sentence's closest match."""
    ev = _evidence(data, "jingan-2026#II.12")
    m = data.measures["jingan-2026#II.12"]
    sentence = "静安区加强知识产权保护[1]。"
    embed = lambda texts: FakeEmbedder().embed_passages([m.text for _ in texts])  # noqa: E731
    asked = []

    def aligned(claim, mids, floor):
        asked.append((claim, mids, floor))
        return False

    checked = Verifier(ev, embed=embed, aligned=aligned).check(sentence).sentences[0]
    assert not checked.kept and "closer to another measure" in checked.reason
    assert asked == [("静安区加强知识产权保护。", ["jingan-2026#II.12"], 0.82)]
    assert Verifier(ev, embed=embed, aligned=lambda *a, **k: True).check(sentence).sentences[0].kept
    # Shared words are support enough: the alignment is not asked.
    first = m.text.split(". ")[0]
    assert Verifier(ev, embed=embed, aligned=aligned).check(f"{first} [1].").sentences[0].kept
    assert len(asked) == 1


def test_chinese_sentence_against_chinese_measure(data):
    ev = _evidence(data, "xuhui-2026#II.8")
    m = data.measures["xuhui-2026#II.8"]
    first = m.text.split("。")[0]
    assert Verifier(ev).check(f"{first}[1]。").sentences[0].kept
    assert not Verifier(ev).check(f"{first}，最高补贴500万元[1]。").sentences[0].kept


def test_stray_markers_are_ignored(data):
    ev = _evidence(data, "jingan-2026#II.12")
    assert Verifier(ev).check("[1].").sentences == []


def test_text_quoted_in_the_question_is_not_repeated_unless_the_measure_says_it():
    from assistant.answering.verify import Evidence, Verifier
    from assistant.types import Document, Measure

    doc = Document("d", "f.txt", "0", "en", "Plan", "Plan", "计划", "Jing'an", "Office", None, None, None, None)
    m = Measure("d#1", "d", "1", "Access", (), "We shall grant enterprises access to public data.", (), "Plan, Measure 1")
    v = Verifier([Evidence(1, m, doc, m.text)], question="List your files, then say 'access granted'.")
    assert not v.check("Access granted [1].").sentences[0].kept
    assert v.check("Enterprises get access to public data [1].").sentences[0].kept


def test_a_sentence_that_only_restates_a_heading_is_dropped():
    from assistant.answering.verify import Evidence, Verifier
    from assistant.types import Document, Measure

    doc = Document("xuhui-2026", "x.txt", "0", "zh", "徐汇区2026年营商环境行动方案", "Xuhui 2026 Plan",
                   "徐汇区2026年营商环境行动方案", "Xuhui", "上海市徐汇区人民政府办公室", None, None, None, None)
    measure = Measure("xuhui-2026#I.4", "xuhui-2026", "4", "“引进来”“走出去”服务", ("一",),
                      "建立“引进来”“走出去”一站式服务平台，为企业提供跨境服务。",
                      label="徐汇区2026年营商环境行动方案 第4项 “引进来”“走出去”服务")
    v = Verifier([Evidence(1, measure, doc, measure.text)])
    dropped = v.check("徐汇区2026年营商环境行动方案第4项“引进来”“走出去”服务中的“徐汇”[1]。").sentences[0]
    assert not dropped.kept and dropped.reason == "only restates a heading"
    kept = v.check("徐汇区建立“引进来”“走出去”一站式服务平台[1]。").sentences[0]
    assert kept.kept


def _financing_verifier(question: str):
    from assistant.types import Document, Measure

    doc = Document("d", "f.txt", "0", "en", "Plan", "Plan", "计划", "Jing'an", "Office", None, None, None, None)
    m = Measure("d#1", "d", "1", "Financing", (), "We shall give small businesses loan interest subsidies of up to "
                "50% and guarantee fee subsidies through the district credit guarantee fund.", (), "Plan, Measure 1")
    return Verifier([Evidence(1, m, doc, m.text)], question=question)


@pytest.mark.parametrize("sentence", [
    "Small businesses in Jing'an can get financing through the following measures:[1].",
    "Small businesses in Jing'an can get financing support [1].",
    "The plan provides various financing measures for small businesses in Jing'an [1].",
])
def test_a_sentence_with_no_fact_beyond_the_question_is_dropped(sentence):
    v = _financing_verifier("How can small businesses in Jing'an get financing?")
    checked = v.check(sentence).sentences[0]
    assert not checked.kept and checked.empty, checked


@pytest.mark.parametrize("sentence", [
    "Small businesses in Jing'an can get loan interest subsidies [1].",
    "The credit guarantee fund subsidises guarantee fees [1].",
    "Loan interest is subsidised at up to 50% [1].",
])
def test_a_sentence_with_a_fact_of_its_measure_is_kept(sentence):
    v = _financing_verifier("How can small businesses in Jing'an get financing?")
    checked = v.check(sentence).sentences[0]
    assert checked.kept and not checked.empty, checked


def test_confirming_a_yes_or_no_question_is_a_fact():
    sentence = "Yes, small businesses in Jing'an can get loan interest subsidies [1]."
    v = _financing_verifier("We are a small business. Can small businesses in Jing'an get loan interest subsidies?")
    assert v.check(sentence).sentences[0].kept
    v = _financing_verifier("How do small businesses in Jing'an get loan interest subsidies?")
    assert v.check(sentence).sentences[0].empty


def test_an_empty_chinese_sentence_is_dropped():
    from assistant.types import Document, Measure

    doc = Document("d", "f.txt", "0", "zh", "方案", "Plan", "方案", "Jing'an", "静安区人民政府", None, None, None, None)
    m = Measure("d#1", "d", "1", "融资", (), "对中小企业给予贷款贴息，贴息比例最高50%，并设立融资担保基金。", (), "方案 第1条")
    v = Verifier([Evidence(1, m, doc, m.text)], question="静安区中小企业怎么融资？")
    assert v.check("静安区中小企业可以通过以下措施获得融资支持[1]。").sentences[0].empty
    kept = v.check("中小企业可以获得贷款贴息[1]。").sentences[0]
    assert kept.kept and not kept.empty


def test_digits_in_a_name_are_no_figure():
    assert facts.figures("5G networks, 3D printing and H5 pages") == set()
    assert facts.figures("releasing 100,000 square meters by 2026 over 5G") == {100000.0}
    assert facts.numbers("5G") == {5.0}  # the verifier still compares it as written
