"""Districts a question names, and whether the library holds documents for them (corpus/places.py):
the gate refuses a district no document is for, whatever the district, with no list in code."""

from __future__ import annotations

from datetime import date

import pytest

from assistant.corpus.places import library_places, named_districts, unknown_districts
from assistant.types import Document


def _doc(doc_id: str, issuer: str, district: str, language: str = "zh") -> Document:
    return Document(doc_id=doc_id, source_file=f"{doc_id}.txt", sha256="x", language=language, title="t",
                    short_title_en="t", short_title_zh="t", district=district, issuer=issuer, doc_number=None,
                    issued=date(2026, 1, 1), valid_until=None, validity_text=None)


LIBRARY = library_places([_doc("songling-2025", "松岭区人民政府", "Songling"),
                          _doc("xuhui-2026", "上海市徐汇区人民政府办公室", "Xuhui"),
                          _doc("jingan-2026", "Jing'an District People's Government", "Jing'an", "en"),
                          _doc("elmford-2026", "Elmford District Commerce Bureau", "Elmford", "en")])


def test_the_library_knows_its_places_in_both_scripts():
    assert {"Songling", "松岭区", "Xuhui", "徐汇区", "上海市", "Jing'an", "Elmford"} <= LIBRARY


@pytest.mark.parametrize("question, unknown", [
    ("柳溪区对租用算力的企业有补贴吗？", {"柳溪区"}),
    ("What does Maplewood district give to e-commerce firms?", {"Maplewood"}),
    ("浦东新区有补贴吗", {"浦东新区"}),
    ("我们准备入驻松岭区的孵化器，有补贴吗？", set()),  # 驻松岭区: the name is the two characters before 区
    ("静安区有什么补贴", set()),  # the English documents' district, by its pinyin
    ("靜安區和徐匯區哪個補貼多？", set()),
    ("Does the Elmford District help with platform fees?", set()),
    ("我们在高新区注册，园区企业、自贸区企业、本区企业有补贴吗？", set()),  # common nouns, not districts
    ("新评上4A级的景区奖励多少？", set()),
    ("在松岭区通过区经济和信息化委员会申报，最高多少？", set()),  # 区 after a verb is the district's own
    ("申请人向区财政局申请，材料报区政府同意", set()),
    ("Which district offers the most?", set()),
])
def test_a_district_no_document_is_for_is_unknown(question, unknown):
    assert unknown_districts(question, LIBRARY) == unknown


def test_named_districts_are_shown_as_written():
    assert named_districts("松岭区和柳溪区") == {"松岭区", "柳溪区"}
    assert named_districts("the District of Maplewood") == {"Maplewood"}


def test_the_gate_refuses_an_unknown_district_and_answers_a_known_one(fake_assistant):
    from assistant.answering.gate import decide
    from assistant.corpus.places import library_places as places_of

    r = fake_assistant.retriever
    places = places_of(r.data.documents.values())
    for question, covered in (("徐汇区对企业知识产权保护有什么支持？", True), ("柳溪区对企业知识产权保护有什么支持？", False)):
        plan = r.plan(question)
        d = decide(question, plan, r.search(question, k=5, plan=plan), r.known_words, places=places)
        assert d.covered is covered or (not covered and d.reason == "other_place")
        if not covered:
            assert d.reason == "other_place"


def test_retrieval_knows_the_librarys_districts_and_a_level_word_does_not_name_the_city():
    from assistant.corpus.places import library_aliases
    from assistant.retrieval.hybrid import detect_places

    aliases = library_aliases([_doc("lanshan-2026", "岚山区人民政府办公室", "Lanshan"),
                               _doc("shanghai-2024", "上海市人民政府办公厅", "Shanghai"),
                               _doc("elmford-2026", "Elmford District Commerce Bureau", "Elmford", "en")])
    assert aliases == {"lanshan": "Lanshan", "岚山": "Lanshan", "elmford": "Elmford"}
    assert detect_places("岚山区对新认定的市级智能工厂奖励多少", aliases) == (("district", "Lanshan"),)
    assert detect_places("市级智能工厂奖励多少", aliases) == (("district", "Shanghai"),)
    assert detect_places("how much does elmford pay", aliases) == (("district", "Elmford"),)
    both = detect_places("what do the shanghai municipal plan and jing'an's plan say", aliases)
    assert set(both) == {("district", "Jing'an"), ("district", "Shanghai")}  # the city named, not a level
