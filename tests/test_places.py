"""Districts a question names, and whether the library knows them (corpus/places.py): a district that
neither the library nor the gazetteer knows is still a place no document is about (corpus/gazetteer.py)."""

from __future__ import annotations

import pytest

from assistant.corpus.places import named_districts, unknown_districts

LIBRARY = frozenset({"Songling", "松岭区", "松岭", "Xuhui", "徐汇区", "徐汇", "上海市", "Jing'an", "Elmford", "elmford"})


@pytest.mark.parametrize("question, unknown", [
    ("柳溪区对租用算力的企业有补贴吗？", {"柳溪区"}),
    ("What does Maplewood district give to e-commerce firms?", {"Maplewood"}),
    ("what does maplewood district give to e-commerce firms?", {"maplewood"}),  # normalised text
    ("浦东新区有补贴吗", {"浦东新区"}),
    ("我们准备入驻松岭区的孵化器，有补贴吗？", set()),  # 驻松岭区: the name is the two characters before 区
    ("静安区有什么补贴", set()),  # the English documents' district, by its pinyin
    ("靜安區和徐匯區哪個補貼多？", set()),
    ("Does the Elmford District help with platform fees?", set()),
    ("我们在高新区注册，园区企业、自贸区企业、本区企业有补贴吗？", set()),  # common nouns, not districts
    ("新评上4A级的景区奖励多少？", set()),
    ("在松岭区通过区经济和信息化委员会申报，最高多少？", set()),  # 区 after a verb is the district's own
    ("申请人向区财政局申请，材料报区政府同意", set()),
    ("Which district offers the most? The same district as last year?", set()),
])
def test_a_district_the_library_does_not_know_is_unknown(question, unknown):
    assert unknown_districts(question, LIBRARY) == unknown


def test_named_districts_are_shown_as_written():
    assert named_districts("松岭区和柳溪区") == {"松岭区", "柳溪区"}
    assert named_districts("the District of Maplewood") == {"Maplewood"}


def test_a_district_outside_library_and_gazetteer_is_elsewhere_and_the_gate_refuses_it(fake_assistant):
    from assistant.answering.gate import decide

    r = fake_assistant.retriever
    for question, elsewhere in (("柳溪区对企业知识产权保护有什么支持？", ["柳溪区"]),
                                ("What does Maplewood district give to e-commerce firms?", ["maplewood"]),
                                ("徐汇区对企业知识产权保护有什么支持？", [])):
        plan = r.plan(question)
        assert [e.name for e in plan.elsewhere] == elsewhere
        if elsewhere:
            d = decide(question, plan, r.search(question, k=5, plan=plan), r.known_words)
            assert not d.covered and d.reason == "other_place"
