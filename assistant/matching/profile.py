"""An enterprise's profile: what it says about itself, each field known or unknown.

A profile comes from a form, from JSON (`jxa match PROFILE.json`, `POST /api/match`) or from a
sentence in the conversation ("we are a 30-person AI start-up in Xuhui…"). A field left empty is
unknown, which is not the same as "none": `qualifications: []` says the enterprise holds none,
a missing `qualifications` says nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import date

from ..corpus.clean import has_cjk
from ..errors import InputError
from .vocabulary import Found, Vocabulary, matching_form

FIELDS = ("district", "industry", "employees", "founded_year", "qualifications", "needs")
MAX_TEXT = 500
MAX_NEEDS = 2000
MAX_QUALIFICATIONS = 20


@dataclass(frozen=True)
class Profile:
    """Example:
        >>> Profile(district="Xuhui", employees=30).known("industry")
        False
    """

    district: str | None = None
    industry: str | None = None
    employees: int | None = None
    founded_year: int | None = None
    qualifications: tuple[str, ...] | None = None
    needs: str | None = None
    language: str = ""  # "en" or "zh"; empty: from the words given
    source: str = "json"  # json, form, conversation

    def known(self, name: str) -> bool:
        return getattr(self, name) is not None

    @property
    def lang(self) -> str:
        if self.language in ("en", "zh"):
            return self.language
        # The words the enterprise wrote itself speak its language; a district or title may be in either.
        for words in (self.needs, self.industry, self.district, " ".join(self.qualifications or ())):
            if words:
                return "zh" if has_cjk(words) else "en"
        return "en"

    def to_json(self) -> dict:
        return {
            "district": self.district,
            "industry": self.industry,
            "employees": self.employees,
            "founded_year": self.founded_year,
            "qualifications": list(self.qualifications) if self.qualifications is not None else None,
            "needs": self.needs,
            "language": self.lang,
            "known": {f: self.known(f) for f in FIELDS},
        }

    @staticmethod
    def from_json(data: object, *, source: str = "json", today: date | None = None) -> Profile:
        """Check a JSON profile where it enters; the message names the field and the fix."""
        if not isinstance(data, dict):
            raise InputError("a profile is a JSON object such as {\"district\": \"Xuhui\", \"employees\": 30}")
        allowed = set(FIELDS) | {"language", "known"}
        extra = sorted(set(data) - allowed)
        if extra:
            raise InputError(f"unknown profile field(s) {', '.join(extra)}; use {', '.join(FIELDS)}")
        today = today or date.today()
        return Profile(
            district=_text(data, "district", MAX_TEXT),
            industry=_text(data, "industry", MAX_TEXT),
            employees=_int(data, "employees", 0, 10_000_000),
            founded_year=_int(data, "founded_year", 1800, today.year),
            qualifications=_list(data, "qualifications"),
            needs=_text(data, "needs", MAX_NEEDS),
            language=_language(data.get("language")),
            source=source,
        )


def _text(data: dict, name: str, limit: int) -> str | None:
    v = data.get(name)
    if v is None:
        return None
    if not isinstance(v, str):
        raise InputError(f"profile field {name!r} must be text")
    v = v.strip()
    if len(v) > limit:
        raise InputError(f"profile field {name!r} is longer than {limit} characters")
    return v or None


def _int(data: dict, name: str, lo: int, hi: int) -> int | None:
    v = data.get(name)
    if v is None or v == "":
        return None
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v.strip())
    if isinstance(v, bool) or not isinstance(v, int):
        raise InputError(f"profile field {name!r} must be a whole number")
    if not lo <= v <= hi:
        raise InputError(f"profile field {name!r} must be between {lo} and {hi}")
    return v


def _list(data: dict, name: str) -> tuple[str, ...] | None:
    v = data.get(name)
    if v is None:
        return None
    if isinstance(v, str):
        v = [p for p in re.split(r"[,，、;；\n]", v)]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise InputError(f"profile field {name!r} must be a list of text, e.g. [\"high-tech enterprise\"]")
    items = tuple(x.strip()[:MAX_TEXT] for x in v if x.strip())
    if len(items) > MAX_QUALIFICATIONS:
        raise InputError(f"profile field {name!r} holds more than {MAX_QUALIFICATIONS} items")
    return items


def _language(v: object) -> str:
    if v in (None, ""):
        return ""
    if v not in ("en", "zh"):
        raise InputError("profile field 'language' must be 'en' or 'zh'")
    return str(v)


# ---------------------------------------------------------------- facts derived with the vocabulary
@dataclass(frozen=True)
class Facts:
    """What the matcher reads off a profile. None: unknown."""

    district: str | None  # canonical district name, or the place outside the library as given
    in_library_city: bool | None
    industries: frozenset[str] | None
    size: str | None  # "sme" or "large"
    startup: bool | None
    growth: bool | None  # True when it names a recognition for fast growth ("gazelle"); never known False
    age: int | None
    qualifications: frozenset[str] | None
    types: frozenset[str]
    need_kinds: frozenset[str] | None
    need_text: str


def place_of(text: str, vocab: Vocabulary) -> tuple[str | None, bool | None]:
    """(district, inside the library's city) for a place as written; (None, None) when unrecognised."""
    form = matching_form(text)
    areas = Vocabulary.find(vocab.place_entries, form)
    if areas:
        districts = vocab.districts_of(areas[0].key)
        if districts:
            return districts[0] if len(districts) == 1 else areas[0].key, True
    for term, city in vocab.elsewhere.items():
        if matching_form(term) in form:
            return city, False
    return None, None


def facts(profile: Profile, vocab: Vocabulary, today: date) -> Facts:
    district, inside = (None, None)
    if profile.district:
        district, inside = place_of(profile.district, vocab)
        if district is None:  # a place we do not know is not one of the library's districts
            district, inside = profile.district, False
    industries = None
    if profile.industry is not None:
        found = {f.key for f in Vocabulary.find(vocab.beneficiaries.get("industry", {}), matching_form(profile.industry))}
        industries = frozenset(vocab.implied("industry", found))
    size = None
    if profile.employees is not None:
        size = "sme" if profile.employees <= vocab.sme_max_employees else "large"
    age = today.year - profile.founded_year if profile.founded_year is not None else None
    startup = age <= vocab.startup_max_years if age is not None else None
    said = " ".join(x for x in (profile.industry, profile.needs, *(profile.qualifications or ())) if x)
    said_form = matching_form(said)
    quals = None
    if profile.qualifications is not None:
        qform = matching_form(" ".join(profile.qualifications))
        quals = frozenset(f.key for f in Vocabulary.find(vocab.beneficiaries.get("qualification", {}), qform))
        if size is None and quals & {"srdi", "tech_sme"}:
            size = "sme"  # these titles are given to SMEs only
    types = frozenset(f.key for f in Vocabulary.find(vocab.beneficiaries.get("type", {}), said_form))
    if startup is None and any(f.key == "startup" for f in Vocabulary.find(vocab.beneficiaries.get("stage", {}),
                                                                           said_form)):
        startup = True  # it calls itself a start-up
    growth = True if any(f.key == "growth" for f in Vocabulary.find(vocab.beneficiaries.get("stage", {}),
                                                                     said_form)) else None
    need_kinds = None
    if profile.needs:
        kinds = {f.key for f in _longest(Vocabulary.find(vocab.need_kinds, matching_form(profile.needs)))}
        need_kinds = frozenset(kinds) or None
    return Facts(district, inside, industries, size, startup, growth, age, quals, types, need_kinds, profile.needs or "")


def _longest(found: list[Found]) -> list[Found]:
    """Terms not inside a longer one found at the same words: "loan interest subsidies" asks for
    funding (loan interest), not also for financing (loan)."""
    return [f for f in found if not any(o is not f and o.start <= f.start and f.end <= o.end
                                        and (o.end - o.start) > (f.end - f.start) for o in found)]


# ---------------------------------------------------------------- a profile from a sentence
_EMPLOYEES = re.compile(r"(\d{1,6})\s*(?:-|\s)?\s*(?:person|people|employees?|staff|strong|人(?:的|规模)?|名员工|名)",
                        re.I)
_FOUNDED = re.compile(r"(?:founded|established|set up|registered|started|成立|创立|注册)\D{0,6}((?:19|20)\d\d)|"
                      r"((?:19|20)\d\d)\s*年?(?:成立|创立|注册)", re.I)
_YEARS_OLD = re.compile(r"(\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten)[- ]years?[- ]old|"
                        r"(?:成立|创立)(?:了)?([一二两三四五六七八九十\d]{1,2})年", re.I)
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
            "ten": 10, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_SELF = re.compile(r"\b(?:we are|we're|our (?:company|firm|start-?up)|i run|i am from)\b|我们是|我们公司|我司|本公司|我们企业",
                   re.I)


def is_self_description(text: str) -> bool:
    return bool(_SELF.search(text))


def from_sentence(text: str, vocab: Vocabulary, today: date) -> Profile:
    """Rule-based reading of a self-description; what it does not say stays unknown."""
    form = matching_form(text)
    district = None
    places = Vocabulary.find(vocab.place_entries, form)
    if places:
        district = places[0].key if vocab.districts_of(places[0].key) else None
    else:
        for term, city in vocab.elsewhere.items():
            if matching_form(term) in form:
                district = city
                break
    employees = None
    m = _EMPLOYEES.search(text)
    if m:
        employees = int(m.group(1))
    founded = None
    m = _FOUNDED.search(text)
    if m:
        founded = int(m.group(1) or m.group(2))
    else:
        m = _YEARS_OLD.search(text)
        if m:
            raw = (m.group(1) or m.group(2) or "").lower()
            n = int(raw) if raw.isdigit() else _NUMBERS.get(raw)
            founded = today.year - n if n is not None else None
    inds = Vocabulary.find(vocab.beneficiaries.get("industry", {}), form)
    industry = ", ".join(dict.fromkeys(text[f.start:f.end] for f in inds)) or None
    quals = [text[f.start:f.end] for cat in ("qualification", "type")
             for f in Vocabulary.find(vocab.beneficiaries.get(cat, {}), form)]
    kinds = Vocabulary.find(vocab.need_kinds, form)
    return Profile(district=district, industry=industry, employees=employees, founded_year=founded,
                   qualifications=tuple(dict.fromkeys(quals)) or None, needs=text.strip()[:MAX_NEEDS] if kinds else None,
                   source="conversation")


def merged(base: Profile, update: Profile) -> Profile:
    """`update`'s known fields over `base`'s."""
    changes = {f.name: getattr(update, f.name) for f in fields(Profile)
               if f.name in FIELDS and getattr(update, f.name) is not None}
    return replace(base, **changes)
