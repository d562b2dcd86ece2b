"""Places are read from the library's documents and the gazetteer, never from a table in code."""

import json
from datetime import date

import pytest

from assistant.corpus.clean import normalize_for_index
from assistant.corpus.gazetteer import LibraryPlaces, chinese_names, load_gazetteer, without_place
from assistant.errors import ConfigError
from assistant.types import Document


def doc(doc_id, title, district, issuer, language="en", short_en="", short_zh=""):
    return Document(doc_id, f"{doc_id}.txt", "0", language, title, short_en or title, short_zh or title, district,
                    issuer, None, date(2026, 1, 1), None, None)


LIBRARY = [
    doc("lakeside-2026", "Lakeside District Measures for Start-ups", "Lakeside", "Lakeside District People's Government"),
    doc("qinglan-2026", "青澜区促进科技创新若干措施", "Qinglan", "上海市青澜区人民政府", "zh"),
    doc("harbour-2025", "Action Plan of Harbour Science City (2025)", "Xuhui", "Xuhui District People's Government"),
    doc("shanghai-2024", "上海市营商环境行动方案", "Shanghai", "上海市人民政府办公厅", "zh"),
]


@pytest.fixture(scope="module")
def places():
    return LibraryPlaces.of(LIBRARY, load_gazetteer())


def test_a_new_district_is_named_in_both_scripts(places):
    assert places.named(normalize_for_index("Support for start-ups in Lakeside?")) == (("district", "Lakeside"),)
    # Its Chinese name comes from the issuer, its English one is the pinyin.
    assert places.named("青澜区有什么科技补贴") == (("district", "Qinglan"),)
    assert places.named("qinglan tech grants") == (("district", "Qinglan"),)
    assert places.named("xuhui") == (("district", "Xuhui"),)


def test_the_city_is_municipal_and_its_bare_name_counts_only_alone(places):
    assert places.is_municipal("Shanghai") and not places.is_municipal("Lakeside")
    assert places.named("shanghai rules") == (("district", "Shanghai"),)
    assert places.named("shanghai's lakeside district") == (("district", "Lakeside"),)
    assert places.named("citywide rules") == (("district", "Shanghai"),)


def test_a_zone_in_a_title_means_its_document(places):
    assert places.named("harbour grants") == (("doc", "harbour-2025"),)


def test_places_no_document_is_about_are_elsewhere(places):
    assert [p.name for p in places.elsewhere("grants in pudong or 北京")] == ["Pudong", "Beijing"]
    assert "pudong" in places.elsewhere("pudong")[0].spellings and "浦东" in places.elsewhere("pudong")[0].spellings
    # A place of the library is never elsewhere, nor a city's name inside a street's.
    assert places.elsewhere("xuhui and 青澜区") == ()
    assert places.elsewhere("offices on nanjing west road") == () and places.elsewhere("南京西路") == ()
    assert [p.name for p in places.elsewhere("南京的企业")] == ["Nanjing"]
    assert places.elsewhere("朝阳产业") == ()  # "sunrise industry", not Chaoyang


def test_follow_up_place_words_cover_the_library_and_the_gazetteer(places):
    words = places.words()
    assert words.search("And in Lakeside?") and words.search("那浦东呢") and words.search("JING'AN")
    assert not words.search("what about trademarks?")


def test_a_department_name_loses_only_its_own_place():
    qinglan = chinese_names(LIBRARY[1])
    assert "青澜区" in qinglan and "上海市" in qinglan
    assert without_place("上海市青澜区财政局", qinglan) == "财政局"
    assert without_place("区财政局", qinglan) == "财政局"
    assert without_place("浦东新区财政局", qinglan) == "浦东新区财政局"  # another district's body stays itself
    assert "静安区" in chinese_names(doc("j", "Plan", "Jing'an", "Jing'an District People's Government"))


def test_a_library_gazetteer_replaces_the_shipped_one(tmp_path):
    (tmp_path / "gazetteer.json").write_text(json.dumps({"districts": {"Lakeside": {"zh": "湖畔区", "terms": ["lakeside"]}},
                                                         "elsewhere": {"terms": {"atlantis": "Atlantis"}}}))
    places = LibraryPlaces.of(LIBRARY[:1], load_gazetteer(tmp_path))
    assert places.named("湖畔区") == (("district", "Lakeside"),)
    assert [p.name for p in places.elsewhere("atlantis or pudong")] == ["Atlantis"]
    (tmp_path / "gazetteer.json").write_text("{not json")
    with pytest.raises(ConfigError, match="gazetteer"):
        load_gazetteer(tmp_path)
