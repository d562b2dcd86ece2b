"""A figure question is answered only by a figure of the kind it asks for."""

import pytest

from assistant.answering.figure_kinds import FigureKind, asked_figure


@pytest.mark.parametrize(("question", "kind"), [
    ("How much reward does a company get for listing?", "amount"),
    ("上市奖励有多少？", "amount"),
    ("最高补贴多少钱", "amount"),
    ("What percentage of the rent is subsidised?", "amount"),
    ("how much space are they freeing up?", "area"),
    ("产业空间面积有多大？", "area"),
    ("How long does the approval take?", "period"),
    ("补贴什么时候发放？", "period"),
    ("How many companies will the park incubate?", "count"),
    ("应用场景要做到多少个？", "count"),
    ("多少？", "any"),
])
def test_the_kind_of_figure_asked_is_recognised(question, kind):
    figure = asked_figure(question)
    assert figure is not None and figure.name == kind


@pytest.mark.parametrize("question", [
    "What support is there for start-ups?",
    "静安区对知识产权有什么保护措施？",
    "What support is there when a company moves to Jing'an?",  # "when" that asks for no date
    "until when is that valid?",  # the document's validity, given with every citation
    "这个政策到什么时候为止？",
    "How long is the policy valid?",
    "张江静安园分成哪几个功能区？",  # which ones, not how many
])
def test_a_question_that_asks_for_no_figure(question):
    assert asked_figure(question) is None


@pytest.mark.parametrize(("kind", "stated", "other"), [
    ("amount", "对首次上市企业给予最高500万元奖励[1]。", "力争新增上市企业20家[1]。"),
    ("amount", "A subsidy of 30% of the rent is given [1].", "The park aims to host 200 listed firms [1]."),
    ("area", "释放10万平方米产业空间[1]。", "培育100家企业[1]。"),
    ("area", "It will free up 1 million square meters of space [1].", "It will incubate 400 companies [1]."),
    ("period", "政策有效期至2026年12月31日[1]。", "培育100家企业[1]。"),
    ("period", "Approval within 5 working days [1].", "Over 400 companies [1]."),
    ("period", "Applications are made within three months after the exhibition [1].", "We may grant it [1]."),
    ("period", "Applications are made from April 1 to April 30 each year [1].", "Up to RMB 100,000 [1]."),
    ("count", "实现孵化科技型企业400家以上[1]。", "给予最高500万元奖励[1]。"),
    ("count", "It will incubate over 400 technology-based enterprises [1].", "Up to 2 million yuan [1]."),
])
def test_a_figure_of_another_kind_does_not_answer(kind, stated, other):
    figure = FigureKind(kind)
    assert figure.stated(stated)
    assert not figure.stated(other)


def test_any_figure_answers_a_question_of_no_particular_kind_but_a_year_alone_does_not():
    assert FigureKind("any").stated("力争新增上市企业20家[1]。")
    assert not FigureKind("any").stated("到2026年，营商环境持续优化[1]。")
    assert FigureKind("period").stated("到2026年，营商环境持续优化[1]。")
    assert not FigureKind("any").stated("It relies on AI, big data and 5G technologies [1].")
