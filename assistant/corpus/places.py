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
