"""Places: what a place name means (the gazetteer, data staff can edit) and which places the library's
documents are about (read from each document's district, issuer and title).

Retrieval boosts the documents of a place a question names, the evidence gate refuses a place no
document is about, a follow-up drops the place a new one replaces, and the verifier reads a
department's name without its own place ("静安区财政局" is the "财政局" of a Jing'an plan).

Example:
    >>> places = LibraryPlaces.of(index.documents.values(), load_gazetteer(seeds))
    >>> places.named("support in xuhui and 静安")
    (('district', 'Xuhui'), ('district', "Jing'an"))
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..errors import ConfigError
from ..types import Document
from .clean import normalize_for_index
from .places import district_of, unknown_districts

GAZETTEER_FILE = "gazetteer.json"
_AFFIX = re.compile(r"(?:新区|区|县|市)$")
# A park or zone a document's title is about ("Zhangjiang High-Tech Zone", "张江高新区"): its name alone
# then means that document.
_AREA_EN = re.compile(r"\b([A-Z][\w'’-]+) (?:High-Tech Zone|Hi-Tech Zone|Science City|Science Park|Industrial Park|"
                      r"Special Area|Free Trade Zone|Economic Zone|Development Zone)\b")
_AREA_ZH = re.compile(r"([\u4e00-\u9fff]{2,4}?)(?:高新区|科学城|新片区|自贸区|开发区|科技园|产业园)")


@dataclass(frozen=True, eq=False)  # one object per file read: hashed by identity
class Gazetteer:
    """The gazetteer file, as data: `cities`, `districts`, `areas` map a name to {zh, terms, districts};
    `elsewhere` maps a term to a place outside the region; `city_level_terms` mean a city's own plan."""

    data: dict
    digest: str

    def section(self, name: str) -> dict:
        return {k: v for k, v in self.data.get(name, {}).items() if not k.startswith("_")}

    @property
    def elsewhere(self) -> dict[str, str]:
        return dict(self.data.get("elsewhere", {}).get("terms", {}))

    @property
    def city_level_terms(self) -> tuple[str, ...]:
        return tuple(self.data.get("city_level_terms", {}).get("terms", ()))


def gazetteer_path(seeds_dir: Path | None) -> Path:
    """The library's own gazetteer when staff put one in its folder, else the one shipped with the package."""
    if seeds_dir is not None and (Path(seeds_dir) / GAZETTEER_FILE).exists():
        return Path(seeds_dir) / GAZETTEER_FILE
    return Path(str(resources.files(__package__).joinpath(GAZETTEER_FILE)))


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> Gazetteer:
    raw = Path(path).read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
        for name in ("cities", "districts", "areas"):
            for key, spec in data.get(name, {}).items():
                if not key.startswith("_") and not isinstance(spec.get("terms", []), list):
                    raise ValueError(f"{name}.{key}.terms is not a list")
    except (UnicodeDecodeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{path} is not a valid gazetteer ({exc}): fix it") from exc
    return Gazetteer(data, hashlib.sha256(raw).hexdigest()[:16])


def load_gazetteer(seeds_dir: Path | None = None) -> Gazetteer:
    path = gazetteer_path(seeds_dir)
    if not path.exists():
        raise ConfigError(f"no gazetteer at {path}: reinstall the package, or put a {GAZETTEER_FILE} in the library folder")
    return _load(str(path.resolve()), path.stat().st_mtime_ns)


def _alternation(terms: Iterable[str], flags: int = 0) -> re.Pattern | None:
    ordered = sorted({normalize_for_index(t) for t in terms if t.strip()}, key=len, reverse=True)
    if not ordered:
        return None
    return re.compile("|".join(rf"(?<![a-z]){re.escape(t)}(?![a-z])" for t in ordered), flags)


def _names(name_en: str, spec: dict) -> set[str]:
    """Every way of writing one place: its English name (with and without the apostrophe), its Chinese
    name with and without the administrative suffix, and the gazetteer's terms."""
    zh = spec.get("zh", "")
    out = {name_en, name_en.replace("'", ""), name_en.replace("'", " "), zh, *spec.get("terms", ())}
    if len(_AFFIX.sub("", zh)) >= 2:
        out.add(_AFFIX.sub("", zh))
    return {normalize_for_index(n) for n in out if n}


@dataclass(frozen=True)
class Elsewhere:
    """A place a question names that no document is about, with every way it is written."""

    name: str
    spellings: tuple[str, ...]


@dataclass(frozen=True)
class LibraryPlaces:
    """The places of one library. `named(text)` lists ("district", name) for a district or city the text
    names and ("doc", doc_id) for a park or zone one document is about; `elsewhere(text)` the place
    names the text uses that no document is about."""

    aliases: dict[str, tuple[str, str]]
    fallback: dict[str, tuple[str, str]]  # a city's bare name: counts only when no district is named
    elsewhere_terms: dict[str, str]
    municipal: frozenset[str]  # places whose documents apply to every district
    masks: tuple[str, ...] = ()  # longer names holding another's ("南京西路" holds "南京")

    @classmethod
    def of(cls, documents: Iterable[Document], gazetteer: Gazetteer) -> LibraryPlaces:
        cities, districts, areas = (gazetteer.section(n) for n in ("cities", "districts", "areas"))
        known = {**districts, **cities}
        aliases: dict[str, tuple[str, str]] = {}
        fallback: dict[str, tuple[str, str]] = {}
        municipal: set[str] = set()
        held: set[str] = set()
        docs = list(documents)
        for doc in docs:
            place = district_of(doc.issuer, doc.title)
            name = doc.district or (place.name_en if place else "")
            if not name:
                continue
            spec = dict(known.get(name, {}))
            if place and place.name_zh and not spec.get("zh"):
                spec["zh"] = place.name_zh
            level = "city" if name in cities or (place and place.level == "city" and place.name_en == name) else "district"
            names = _names(name, spec)
            held |= names
            if level == "city":
                municipal.add(name)
                bare = {normalize_for_index(name), normalize_for_index(_AFFIX.sub("", spec.get("zh", "")))}
                for n in bare - {""}:
                    fallback[n] = ("district", name)
                for n in names - bare:
                    aliases[n] = ("district", name)
                aliases[normalize_for_index(f"{name} municipal")] = ("district", name)
                for term in gazetteer.city_level_terms:
                    aliases[normalize_for_index(term)] = ("district", name)
            else:
                for n in names:
                    aliases[n] = ("district", name)
        for doc in docs:
            titles = (doc.title, doc.short_title_en, doc.short_title_zh)
            for title in titles:
                for m in (*_AREA_EN.finditer(title or ""), *_AREA_ZH.finditer(title or "")):
                    term = normalize_for_index(m.group(1))
                    if term not in aliases and term not in fallback:
                        aliases[term] = ("doc", doc.doc_id)
            folded = normalize_for_index(" ".join(t for t in titles if t))
            for area, spec in areas.items():
                terms = _names(area, spec) - {""}
                if _alternation(terms).search(folded):
                    for t in terms:
                        aliases.setdefault(t, ("doc", doc.doc_id))
        # Every other place the gazetteer knows is elsewhere, unless the library holds a document of it.
        elsewhere: dict[str, str] = {}
        for name, spec in known.items():
            for n in _names(name, spec):
                if n not in held and n not in aliases:
                    elsewhere[n] = name
        for term, name in gazetteer.elsewhere.items():
            n = normalize_for_index(term)
            if n not in held and n not in aliases:
                elsewhere[n] = name
        masks = tuple(sorted({n for a, spec in areas.items() for n in _names(a, spec)}, key=len, reverse=True))
        return cls(aliases, fallback, elsewhere, frozenset(municipal), masks)

    def words(self) -> re.Pattern | None:
        """Every place name a question may use, in any case: the library's places and every other place."""
        return _compiled(tuple(sorted({*self.aliases, *self.fallback, *self.elsewhere_terms, *self.masks})), re.I)

    def named(self, text: str) -> tuple[tuple[str, str], ...]:
        """The library's places a (normalised) text names, in the order of the alias table."""
        found: list[tuple[str, str]] = []
        for alias, target in self.aliases.items():
            if target not in found and re.search(rf"(?<![a-z]){re.escape(alias)}(?![a-z])", text):
                found.append(target)
        if not found:
            for alias, target in self.fallback.items():
                if target not in found and re.search(rf"(?<![a-z]){re.escape(alias)}(?![a-z])", text):
                    found.append(target)
        return tuple(found)

    def elsewhere(self, text: str) -> tuple[Elsewhere, ...]:
        """The places a (normalised) text names that no document of the library is about; a name inside
        a longer place name ("南京" in "南京西路") does not count."""
        for mask in self.masks:
            text = re.sub(rf"(?<![a-z]){re.escape(mask)}(?![a-z])", " ", text)
        pattern = _compiled(tuple(sorted(self.elsewhere_terms)))
        names = dict.fromkeys(self.elsewhere_terms[m.group(0)] for m in pattern.finditer(text)) if pattern else {}
        found = [Elsewhere(n, tuple(t for t, name in self.elsewhere_terms.items() if name == n)) for n in names]
        # A district the gazetteer does not list either ("松溪区", "pinegrove district"): still not the library's.
        listed = {t for e in found for t in e.spellings}
        for name in sorted(unknown_districts(text, set(self.aliases) | set(self.fallback))):
            if name not in listed and _AFFIX.sub("", name) not in listed:
                found.append(Elsewhere(name, tuple(dict.fromkeys((name, _AFFIX.sub("", name))))))
        return tuple(found)

    def is_municipal(self, district: str) -> bool:
        return district in self.municipal


def chinese_names(document: Document, gazetteer: Gazetteer | None = None) -> tuple[str, ...]:
    """The Chinese names of a document's own place and of the city it lies in, with and without the
    administrative suffix, longest first: "静安区", "上海市", "静安", "上海" for a Jing'an plan."""
    g = gazetteer or load_gazetteer()
    cities, districts = g.section("cities"), g.section("districts")
    place = district_of(document.issuer, document.title)
    found = [{**districts, **cities}.get(document.district, {}).get("zh", "")]
    if place:
        found += [place.name_zh, place.city_zh]
    found += [spec.get("zh", "") for spec in cities.values() if document.district in spec.get("districts", ())]
    out: set[str] = set()
    for zh in filter(None, found):
        bare = _AFFIX.sub("", zh) or zh
        out |= {zh, bare} | ({bare + "市"} if zh in cities_zh(cities) else set())
    return tuple(sorted(out, key=len, reverse=True))


def cities_zh(cities: dict) -> set[str]:
    return {spec.get("zh", "") for spec in cities.values()} - {""}


def without_place(name_zh: str, places: Iterable[str]) -> str:
    """A Chinese organisation name without a leading place among `places` ("静安区财政局" -> "财政局",
    "上海市静安区财政局" -> "财政局", "区财政局" -> "财政局"): one body, however much of its place is written."""
    ordered = sorted(places, key=len, reverse=True)
    for _ in range(2):  # a city, then its district
        head = next((p for p in ordered if p and name_zh.startswith(p)), "")
        name_zh = name_zh[len(head):]
    return re.sub(r"^[市区]", "", name_zh)


@lru_cache(maxsize=16)
def _compiled(terms: tuple[str, ...], flags: int = 0) -> re.Pattern | None:
    return _alternation(terms, flags)
