"""The place a document applies to, read from its issuer (or title): district or city, in both scripts.

"上海市徐汇区人民政府办公室" -> 徐汇区 (Xuhui), city 上海市; "Lakeside District People's Government" ->
Lakeside. The English name of a Chinese place is its pinyin, which is how districts are written in
English ("Xuhui", "Jing'an"); a catalog entry may give another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .clean import has_cjk, to_simplified

_CITY_ZH = re.compile(r"^([\u4e00-\u9fff]{2,4}?市)")
_DISTRICT_ZH = re.compile(r"^([\u4e00-\u9fff]{1,6}?(?:新区|区|县))")
_DISTRICT_EN = re.compile(r"\b((?:[A-Z][\w'’-]+ ){0,2}[A-Z][\w'’-]+) (?:District|County|New Area)\b")
_CITY_EN = re.compile(r"\b([A-Z][\w'’-]+) (?:Municipal(?:ity)?|City)\b|\bMunicipality of ([A-Z][\w'’-]+)\b|"
                      r"\bCity of ([A-Z][\w'’-]+)\b")
_NOT_PLACES = {"The", "People's", "People’s", "General", "Office", "District"}


@dataclass(frozen=True)
class Place:
    name_en: str  # "Xuhui", "Lakeside", "Shanghai"
    name_zh: str  # "徐汇区", "" for an English document
    level: str  # "district" or "city"
    city_zh: str = ""


@lru_cache(maxsize=256)
def pinyin_name(name_zh: str) -> str:
    """'徐汇区' -> 'Xuhui', '静安区' -> "Jing'an" (apostrophe before a syllable opening with a vowel)."""
    from pypinyin import lazy_pinyin

    core = re.sub(r"(?:新区|区|县|市)$", "", name_zh) or name_zh
    syllables = lazy_pinyin(core)
    out = syllables[0] if syllables else ""
    for s in syllables[1:]:
        out += ("'" if s[:1] in "aoe" else "") + s
    return out.capitalize()


def district_of(issuer: str, title: str = "") -> Place | None:
    """The district (or, for a city-level body, the city) an issuer speaks for; None if it names none."""
    for text in (issuer, title):
        if not text:
            continue
        if has_cjk(text):
            text = to_simplified(text)
            city = _CITY_ZH.match(text)
            rest = text[city.end():] if city else text
            district = _DISTRICT_ZH.match(rest)
            if district:
                return Place(pinyin_name(district.group(1)), district.group(1), "district",
                             city.group(1) if city else "")
            if city:
                return Place(pinyin_name(city.group(1)), city.group(1), "city", city.group(1))
            continue
        m = _DISTRICT_EN.search(text)
        if m:
            words = [w for w in m.group(1).split() if w not in _NOT_PLACES]
            if words:
                return Place(" ".join(words), "", "district")
        m = _CITY_EN.search(text)
        if m:
            name = next(g for g in m.groups() if g)
            if name not in _NOT_PLACES:
                return Place(name, "", "city")
    return None


def slug(name: str) -> str:
    """'Jing'an' -> 'jingan', 'New Harbour' -> 'new-harbour': the place part of a derived doc_id."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("'", "").replace("’", "")).strip("-")


# A district a question names: two or three characters before 区/县/新区 (not a common noun such as 园区
# or 景区), or "X District". Names the library's documents hold are known; any other is a place the
# policies do not cover.
_CJK = re.compile(r"[\u4e00-\u9fff]")
# "Maplewood District", "New Harbour district", "the District of Maplewood"; in normalised (lower-case)
# text one word before "district".
_NAMED_EN = (re.compile(r"\b([A-Z][a-z'’]+(?: [A-Z][a-z'’]+)?) [Dd]istrict\b"),
             re.compile(r"\b[Dd]istrict of ([A-Za-z][a-z'’]+)\b"),
             re.compile(r"\b([a-z][a-z'’]+) district\b"))
_NOT_A_DISTRICT_ZH = re.compile(
    r"(?:园|社|本|该|全|辖|城|景|街|片|郊|市|小|地|山|灾|专|展|校|厂|矿|营|商|湾|港|各|外|老|特|"
    r"保税|自贸|开发|示范|功能|试验|实验|产业|集聚|核心|先行|创新|高新|经济|科技|工业|物流|服务|生活|居住|办公|"
    r"风景|旅游|其他|其它|哪个|什么|这个|那个|同一|不同|本省|所在|注册|一个|两个|几个|个|"
    # a preposition or verb right before 区: "申请人向区财政局", "报区政府同意"
    r"向|由|经|在|到|对|给|从|跟|和|与|及|为|按|归|报|交|送|请|去|回|往|赴|入|出|进|驻|于|至|是|的|了|或)$")
_EN_NOT_NAMES = {"the", "this", "that", "our", "which", "what", "each", "every", "any", "another", "other", "a",
                 "same", "whole", "new", "local", "my", "your", "their", "its", "one", "whose", "in", "of", "per",
                 "central", "business", "industrial", "school", "financial", "commercial", "historic", "his", "her"}


# Parts of speech a district's name never is (jieba's tags): prepositions, verbs, pronouns, adverbs,
# conjunctions, particles, numerals, measure words, time and direction words.
_FUNCTION_TAGS = frozenset({"p", "v", "vd", "vg", "r", "d", "c", "u", "ud", "uj", "ul", "uv", "uz", "m", "q", "f", "t", "ad"})


@lru_cache(maxsize=4096)
def _function_word(word: str) -> bool:
    """Whether jieba's dictionary holds `word` as one word of a part of speech no place name has."""
    import jieba
    import jieba.posseg as pseg

    jieba.setLogLevel(60)
    tokens = pseg.lcut(word)
    return len(tokens) == 1 and tokens[0].word == word and word in jieba.dt.FREQ and tokens[0].flag in _FUNCTION_TAGS


def _zh_candidates(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """For each 区/县 in the text: the name as shown, and the names it may be (two or three characters)."""
    text = to_simplified(text)
    out = []
    for m in re.finditer(r"新区|区|县", text):
        before = text[:m.start()]
        names = tuple(before[-n:] for n in (2, 3) if len(before) >= n and all(_CJK.match(c) for c in before[-n:]))
        up_to_qu = text[:m.end() - 1]  # "高新区" read as 高新 + 区 as well as 高 + 新区
        if not names or _NOT_A_DISTRICT_ZH.search(before[-3:]) or _NOT_A_DISTRICT_ZH.search(up_to_qu[-3:]) \
                or _function_word(names[0]):
            continue  # "通过区融资担保公司": 区 is the district's own, after a verb
        out.append((names[0] + m.group(0), names))
    return out


def named_districts(text: str) -> set[str]:
    """Districts a question names: "松溪区", "Pinegrove" (as written)."""
    out = {shown for shown, _ in _zh_candidates(text)}
    for m in (m for pattern in _NAMED_EN for m in pattern.finditer(text)):
        name = m.group(1)
        words = [w for w in name.split() if w.lower() not in _EN_NOT_NAMES and w not in _NOT_PLACES]
        if words:
            out.add(" ".join(words))
    return out


def _key(name: str) -> str:
    return re.sub(r"(?:新区|区|县)$", "", name).lower().replace("'", "").replace("’", "").replace(" ", "")


def unknown_districts(text: str, known: set[str]) -> set[str]:
    """The districts a question names that no document of the library is for (`known`: names in both
    scripts, e.g. {"Qinglan", "青澜区", "Xuhui", "徐汇区"}), compared without case or the 区 suffix."""
    keys = {_key(k) for k in known}
    # A Chinese name is also known by its pinyin ("静安区" for the English documents of Jing'an).
    out = {shown for shown, names in _zh_candidates(text)
           if not any(_key(n) in keys or _key(pinyin_name(n)) in keys for n in names)}
    for name in named_districts(text) - {shown for shown, _ in _zh_candidates(text)}:
        if _key(name) not in keys and not any(_key(w) in keys for w in name.split()):
            out.add(name)
    return out

