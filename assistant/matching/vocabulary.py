"""The label vocabulary (a data file staff edit), compiled into term finders.

Text is matched in a form of the same length as the display text (lower case, simplified Chinese,
straight quotes), so a match's offsets cut the quote straight out of the measure as shown.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..corpus.clean import has_cjk, to_simplified
from ..corpus.gazetteer import Gazetteer, load_gazetteer
from ..errors import ConfigError

VOCABULARY_FILE = "label-vocabulary.json"

_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "，": ",", "（": "(", "）": ")"})


def matching_form(text: str) -> str:
    """Lower case, simplified, straight quotes, character for character (offsets stay valid)."""
    out = []
    for ch in text.translate(_QUOTES):
        low = ch.lower()
        if len(low) != 1:
            low = ch
        if has_cjk(low):
            simp = to_simplified(low)
            low = simp if len(simp) == 1 else low
        out.append(low)
    return "".join(out)


def _term_pattern(term: str) -> str:
    term = matching_form(term)
    body = re.escape(term)
    if re.search(r"[a-z]", term):
        # Latin terms start at a word; short ones (AI, SME, AEO) must be whole words.
        body = r"(?<![a-z])" + body
        if len(term) <= 3:
            body += r"(?![a-z])"
    return body


def _alternation(terms: list[str]) -> re.Pattern | None:
    terms = [t for t in terms if t.strip()]
    return re.compile("|".join(_term_pattern(t) for t in sorted(terms, key=len, reverse=True))) if terms else None


@dataclass(frozen=True)
class Entry:
    key: str
    en: str
    zh: str
    pattern: re.Pattern
    implies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Found:
    key: str
    start: int
    end: int


def _compile(key: str, spec: dict) -> Entry:
    terms = [t for t in spec.get("terms", []) if t.strip()]
    if not terms:
        raise ConfigError(f"label vocabulary: {key!r} has no terms")
    # Longest first, so "small and medium-sized" wins over "small".
    alternation = "|".join(_term_pattern(t) for t in sorted(terms, key=len, reverse=True))
    return Entry(key, spec.get("en", key), spec.get("zh", key), re.compile(alternation),
                 tuple(spec.get("implies", ())))


class Vocabulary:
    """Compiled vocabulary. `find(group, text)` lists every term of a group found in a text."""

    def __init__(self, data: dict, digest: str):
        self.digest = digest
        self.data = data
        try:
            self.kinds = {k: _compile(k, v) for k, v in data["support_kinds"].items()}
            # An enterprise names its needs in its own words ("office", "hiring"), not the policy's.
            self.need_kinds = {k: _compile(k, {**v, "terms": [*v["terms"], *v.get("need_terms", [])]})
                               for k, v in data["support_kinds"].items()}
            self.beneficiaries = {cat: {k: _compile(k, v) for k, v in entries.items()}
                                  for cat, entries in data["beneficiaries"].items()}
            nouns = data.get("beneficiary_nouns", [])
            self.nouns = re.compile("|".join(_term_pattern(n) for n in nouns)) if nouns else None
            self.window = int(data.get("beneficiary_window", 40))
            self.industry_nouns = _alternation(data.get("industry_nouns", []))
            self.industry_window = int(data.get("industry_window", 20))
            cues = data.get("condition_cues", [])
            self.cues = re.compile("|".join(_term_pattern(c) for c in cues)) if cues else None
            not_offer = data.get("not_offer_cues", {})
            self.not_offer = _alternation(not_offer.get("terms", []))
            self.help = _alternation(not_offer.get("help", []))
            self.anaphora = _alternation(data.get("anaphora", []))
            self.conditions_cover_measure = bool(data.get("conditions_cover_measure", True))
            actors = dict(data.get("actor_cues", {}))
            self.actor = _alternation(actors.get("terms", []))
            self.actor_window = int(actors.get("window", 8))
            evidence = dict(data.get("kind_evidence", {}))
            self.kind_evidence = evidence
            self.enterprise = _alternation(evidence.get("enterprise_words", []))
            self.amounts = re.compile(data["amount_pattern"], re.I) if data.get("amount_pattern") else None
            self.departments = re.compile(data["department_pattern"]) if data.get("department_pattern") else None
            self.startup_max_years = int(data.get("startup_max_years", 3))
            self.sme_max_employees = int(data.get("sme_max_employees", 300))
            places = data["places"]
            self.cities = {k: v for k, v in places.get("cities", {}).items() if not k.startswith("_")}
            self.districts = {k: v for k, v in places.get("districts", {}).items() if not k.startswith("_")}
            self.areas = {k: v for k, v in places.get("areas", {}).items() if not k.startswith("_")}
            self.elsewhere = dict(places.get("elsewhere", {}).get("terms", {}))
            self.place_entries = {name: _compile(name, spec) for name, spec in
                                  [*self.districts.items(), *self.areas.items()]}
            self.city_entries = {name: _compile(name, spec) for name, spec in self.cities.items()}
        except (KeyError, TypeError, re.error) as exc:
            raise ConfigError(f"label vocabulary is malformed ({exc!r}): check {VOCABULARY_FILE}") from exc

    @staticmethod
    def find(entries: dict[str, Entry], form: str) -> list[Found]:
        found = []
        for key, entry in entries.items():
            for m in entry.pattern.finditer(form):
                found.append(Found(key, m.start(), m.end()))
        return sorted(found, key=lambda f: (f.start, -f.end))

    def implied(self, category: str, keys: set[str]) -> set[str]:
        """Keys plus everything they imply (AI -> technology), transitively."""
        entries = self.beneficiaries.get(category, {})
        out, todo = set(keys), list(keys)
        while todo:
            key = todo.pop()
            for broader in entries[key].implies if key in entries else ():
                if broader not in out:
                    out.add(broader)
                    todo.append(broader)
        return out

    def districts_of(self, place: str) -> tuple[str, ...]:
        if place in self.districts:
            return (place,)
        if place in self.areas:
            return tuple(self.areas[place].get("districts", ()))
        if place in self.cities:
            return tuple(self.cities[place].get("districts", ()))
        return ()

    def city_of(self, district: str) -> str | None:
        for city, spec in self.cities.items():
            if district in spec.get("districts", ()):
                return city
        return None

    def label(self, category: str, key: str, lang: str) -> str:
        if category == "kind":
            entry = self.kinds.get(key)
        else:
            entry = self.beneficiaries.get(category, {}).get(key)
        if entry is None:
            return key
        return entry.zh if lang == "zh" else entry.en


def vocabulary_path(seeds_dir: Path) -> Path:
    """The library's own vocabulary when staff put one in its folder, else the one shipped with the package."""
    own = Path(seeds_dir) / VOCABULARY_FILE
    if own.exists():
        return own
    return Path(str(resources.files(__package__).joinpath(VOCABULARY_FILE)))


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, places: Gazetteer) -> Vocabulary:
    raw = Path(path).read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}): fix it") from exc
    # Where a measure applies is read from the one gazetteer, so labels follow its hash too.
    data.setdefault("places", places.data)
    return Vocabulary(data, hashlib.sha256(raw + places.digest.encode()).hexdigest()[:16])


def load_vocabulary(seeds_dir: Path) -> Vocabulary:
    path = vocabulary_path(seeds_dir)
    if not path.exists():
        raise ConfigError(f"no label vocabulary at {path}: reinstall the package, or put a {VOCABULARY_FILE} "
                          "in the library folder")
    return _load(str(path.resolve()), path.stat().st_mtime_ns, load_gazetteer(seeds_dir))
