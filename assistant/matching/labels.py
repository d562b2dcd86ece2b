"""Measure labels, made at ingestion: who benefits, where, what kind of support, stated conditions,
amounts, departments and validity, each tied to the words of the measure it came from.

A measure is read sentence by sentence. A sentence naming a kind of support is an *offer*; the
beneficiaries named in the same sentence (SMEs, start-ups, high-tech enterprises, an industry's
enterprises) are its conditions, and the places it names narrow where it applies. Every label keeps
its quote and offsets, and a label whose quote is not in the measure's text is dropped.

Labels are stored beside the index as JSON (`labels.json`), keyed by measure id with the hash of the
measure's text and of the vocabulary, so an unchanged measure keeps its labels. Staff corrections
live in `label-overrides.json` in the seeds folder, applied when labels are read, so they survive
every re-indexing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..errors import ConfigError
from ..types import Document, Measure
from .vocabulary import Found, Vocabulary, load_vocabulary, matching_form

log = logging.getLogger(__name__)

LABELS_FILE = "labels.json"
OVERRIDES_FILE = "label-overrides.json"
FORMAT = 1
# Bump when the rules below change what they label, so stored labels count as stale.
RULES_VERSION = "5"
BENEFICIARY_CATEGORIES = ("size", "stage", "type", "qualification", "industry")
# Categories whose terms name a kind of enterprise by themselves; an industry term names one only
# when an enterprise noun follows it ("fashion consumer enterprises", not "apply AI").
_SELF_NAMING = {"size", "stage", "type", "qualification"}
_SENTENCE_END = re.compile(r"(?<=[.;!?。；！？])\s*")


@dataclass(frozen=True)
class Term:
    """One label: its category and key, and the words of the measure it rests on."""

    category: str  # kind, size, stage, type, qualification, industry, place, condition, amount, department
    key: str
    quote: str
    start: int
    end: int


@dataclass(frozen=True)
class Offer:
    """A sentence that offers support: its kinds, who it is for, and where."""

    start: int
    end: int
    quote: str
    kinds: tuple[str, ...]
    beneficiaries: tuple[Term, ...] = ()
    places: tuple[Term, ...] = ()
    districts: tuple[str, ...] = ()  # empty: the document's area
    conditional: Term | None = None  # "eligible", "符合条件的": a condition the text does not spell out
    mentions: tuple[Term, ...] = ()  # industries named without an enterprise noun ("the UHD video industry")


@dataclass(frozen=True)
class MeasureLabels:
    measure_id: str
    doc_id: str
    content_hash: str
    vocabulary: str
    kinds: tuple[str, ...]
    terms: tuple[Term, ...]
    offers: tuple[Offer, ...]
    scope: tuple[str, ...]  # districts the measure's document covers
    departments: tuple[str, ...]
    valid_until: str | None
    validity_quote: str | None
    corrected: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    strength: tuple[tuple[str, int], ...] = ()  # (kind, weight): how much of the measure is about it

    def of(self, category: str) -> list[Term]:
        return [t for t in self.terms if t.category == category]

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(o: dict) -> MeasureLabels:
        def term(t: dict) -> Term:
            return Term(**t)

        offers = tuple(Offer(start=x["start"], end=x["end"], quote=x["quote"], kinds=tuple(x["kinds"]),
                             beneficiaries=tuple(term(t) for t in x["beneficiaries"]),
                             places=tuple(term(t) for t in x["places"]), districts=tuple(x["districts"]),
                             conditional=term(x["conditional"]) if x.get("conditional") else None,
                             mentions=tuple(term(t) for t in x.get("mentions", ())))
                       for x in o["offers"])
        return MeasureLabels(o["measure_id"], o["doc_id"], o["content_hash"], o["vocabulary"], tuple(o["kinds"]),
                             tuple(term(t) for t in o["terms"]), offers, tuple(o["scope"]),
                             tuple(o["departments"]), o.get("valid_until"), o.get("validity_quote"),
                             bool(o.get("corrected")), tuple(o.get("notes", ())),
                             tuple((k, int(n)) for k, n in o.get("strength", ())))


def labels_key(vocab: Vocabulary) -> str:
    """What labels depend on besides the measure: the vocabulary's hash and these rules' version."""
    return f"{vocab.digest}:{RULES_VERSION}"


def content_hash(measure: Measure, document: Document) -> str:
    """What the labels of a measure depend on: its words and its document's place and validity."""
    h = hashlib.sha256()
    for part in (measure.title, measure.text, "|".join(measure.departments), document.district,
                 str(document.valid_until), document.validity_text or ""):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def _term(category: str, f: Found, text: str) -> Term:
    return Term(category, f.key, text[f.start:f.end], f.start, f.end)


def _doc_scope(document: Document, vocab: Vocabulary) -> tuple[str, ...]:
    for name, entry in vocab.city_entries.items():
        if document.district == name or entry.pattern.search(matching_form(document.district)):
            return tuple(vocab.cities[name].get("districts", ()))
    for name, entry in vocab.place_entries.items():
        if document.district == name or entry.pattern.search(matching_form(document.district)):
            return vocab.districts_of(name)
    return (document.district,) if document.district else ()


def _is_beneficiary(category: str, f: Found, form: str, vocab: Vocabulary, sentence_end: int) -> bool:
    if vocab.actor and vocab.actor.search(form[f.end:f.end + vocab.actor_window]):
        return False  # "state-owned enterprises in arrears": the one acting, not the one helped
    if category in _SELF_NAMING:
        return True
    if vocab.nouns is None:
        return False
    window = form[f.end:min(sentence_end, f.end + vocab.window)]
    # The enterprise noun must follow before the clause turns: a verb phrase after a comma is another clause.
    window = re.split(r"[,，、;；:：]\s*(?:and |to |we |so |which |as |by )|[。；]", window)[0]
    return bool(vocab.nouns.search(window))


def _names_an_industry(f: Found, form: str, vocab: Vocabulary) -> bool:
    """An industry named as one ("the UHD video industry", "人工智能产业"), not a technology used or
    an actor ("by using big data", "银行的系统"): an industry noun follows before the clause turns."""
    if vocab.industry_nouns is None:
        return True
    window = re.split(r"[,，、;；:：。]", form[f.end:f.end + vocab.industry_window])[0]
    return bool(vocab.industry_nouns.search(form[f.start:f.end] + window))


def _eligibility(form: str, vocab: Vocabulary) -> re.Match | None:
    """An eligibility cue about enterprises ("eligible enterprises", "符合条件的企业"), not about a
    service or a project ("符合条件的政务服务")."""
    if vocab.cues is None or vocab.nouns is None:
        return None
    for cue in vocab.cues.finditer(form):
        after = re.split(r"[.;!?。；！？]", form[cue.end():cue.end() + 60])[0]  # this sentence only
        if vocab.nouns.search(after):
            return cue
    return None


def _places(form: str, text: str, lo: int, hi: int, vocab: Vocabulary) -> list[Term]:
    return [Term("place", f.key, text[lo + f.start:lo + f.end], lo + f.start, lo + f.end)
            for f in Vocabulary.find(vocab.place_entries, form[lo:hi])]


def _districts(places: Iterable[Term], vocab: Vocabulary, scope: tuple[str, ...]) -> tuple[str, ...]:
    named = {d for p in places for d in vocab.districts_of(p.key)}
    inside = sorted(named & set(scope)) if scope else sorted(named)
    return tuple(inside)


def make_labels(measure: Measure, document: Document, vocab: Vocabulary) -> MeasureLabels:
    """Rule-based labels for one measure; the text alone decides them (no document is special)."""
    text = measure.text
    form = matching_form(text)
    scope = _doc_scope(document, vocab)
    title_places = [Term("place", f.key, measure.title[f.start:f.end], -1, -1)
                    for f in Vocabulary.find(vocab.place_entries, matching_form(measure.title))]
    measure_districts = _districts(title_places, vocab, scope)
    terms: list[Term] = []
    offers: list[Offer] = []
    previous_bens: list[Term] = []
    pos = 0
    for piece in _SENTENCE_END.split(text):
        if not piece.strip():
            pos += len(piece)
            continue
        lo = text.index(piece, pos)
        hi = lo + len(piece)
        pos = hi
        sform = form[lo:hi]
        kinds = Vocabulary.find(vocab.kinds, sform)
        bens: list[Term] = []
        mentions: list[Term] = []
        for category, entries in vocab.beneficiaries.items():
            for f in Vocabulary.find(entries, sform):
                term = Term(category, f.key, text[lo + f.start:lo + f.end], lo + f.start, lo + f.end)
                if _is_beneficiary(category, f, sform, vocab, len(sform)):
                    bens.append(term)
                elif category == "industry" and _names_an_industry(f, sform, vocab):
                    mentions.append(term)
        if not bens and previous_bens and vocab.anaphora and vocab.anaphora.search(sform):
            bens = list(previous_bens)  # "a policy package customised for them": those just named
        previous_bens = bens
        places = _places(form, text, lo, hi, vocab)
        cue = _eligibility(sform, vocab)
        conditional = Term("condition", "unspecified", text[lo + cue.start():lo + cue.end()], lo + cue.start(),
                           lo + cue.end()) if cue else None
        terms += [Term("kind", f.key, text[lo + f.start:lo + f.end], lo + f.start, lo + f.end) for f in kinds]
        terms += bens + places
        if conditional:
            terms.append(Term("condition", "stated", piece.strip(), lo + piece.index(piece.strip()),
                              lo + piece.index(piece.strip()) + len(piece.strip())))
        if vocab.amounts:
            terms += [Term("amount", "amount", m.group(0), lo + m.start(), lo + m.end())
                      for m in vocab.amounts.finditer(piece)]
        if vocab.departments:
            terms += [Term("department", "department", m.group(0), lo + m.start(), lo + m.end())
                      for m in vocab.departments.finditer(piece)]
        governs = bool(vocab.not_offer and vocab.not_offer.search(sform)) and not (
            vocab.help and vocab.help.search(sform))
        if kinds and not governs:
            districts = _districts(places, vocab, scope) or measure_districts
            quote = piece.strip()
            start = lo + piece.index(quote)
            offers.append(Offer(start, start + len(quote), quote, tuple(dict.fromkeys(f.key for f in kinds)),
                                tuple(_dedupe(bens)), tuple(places), districts, conditional,
                                tuple(_dedupe(mentions))))
    # A title naming a kind of support ("Facilitating Financing Services") offers it to all the measure is for.
    title_kinds = Vocabulary.find(vocab.kinds, matching_form(measure.title))
    if title_kinds:
        # The title speaks for the whole measure: whoever its sentences name is who it is for.
        offers.insert(0, Offer(-1, -1, measure.title, tuple(dict.fromkeys(f.key for f in title_kinds)),
                               tuple(_dedupe([b for o in offers for b in o.beneficiaries])),
                               tuple(title_places), measure_districts,
                               mentions=tuple(_dedupe([t for o in offers for t in o.mentions]))))
        terms += [Term("kind", f.key, measure.title[f.start:f.end], -1, -1) for f in title_kinds]
    stated = next((o.conditional for o in offers if o.conditional), None)
    if stated is None:
        cue = _eligibility(form, vocab)
        stated = Term("condition", "unspecified", text[cue.start():cue.end()], cue.start(), cue.end()) if cue else None
    if stated is not None and vocab.conditions_cover_measure:
        # Eligibility the text names but does not spell out may govern every offer of the measure:
        # none of them is certain until the department confirms it.
        offers = [o if o.conditional else replace(o, conditional=stated) for o in offers]
    offers = _substantial(offers, terms, form, vocab)
    strength = _strength(offers, terms, form, vocab)
    departments = tuple(dict.fromkeys([*measure.departments, *(t.quote for t in terms if t.category == "department")]))
    labels = MeasureLabels(
        measure_id=measure.measure_id, doc_id=measure.doc_id, content_hash=content_hash(measure, document),
        vocabulary=labels_key(vocab), kinds=tuple(dict.fromkeys(k for o in offers for k in o.kinds)),
        terms=tuple(terms), offers=tuple(offers), scope=scope, departments=departments,
        valid_until=document.valid_until.isoformat() if document.valid_until else None,
        validity_quote=document.validity_text, strength=tuple(sorted(strength.items())))
    return checked(labels, measure)


def _substantial(offers: list[Offer], terms: list[Term], form: str, vocab: Vocabulary) -> list[Offer]:
    """Offers cut to the kinds the measure is about: named in its title, found at least
    `min_term_hits` times, or in a sentence addressed to enterprises. A passing mention ("an
    application scenario" in a plan for the park's spatial layout) is not an offer."""
    rule = vocab.kind_evidence
    hits: dict[str, int] = {}
    for t in terms:
        if t.category == "kind" and t.start >= 0:
            hits[t.key] = hits.get(t.key, 0) + 1
    keep: set[str] = set()
    for o in offers:
        if o.start < 0 and rule.get("title", True):
            keep |= set(o.kinds)
        elif rule.get("enterprise_sentence", True) and vocab.enterprise and vocab.enterprise.search(
                form[o.start:o.end]):
            keep |= set(o.kinds)
    keep |= {k for k, n in hits.items() if n >= int(rule.get("min_term_hits", 2))}
    cut = [replace(o, kinds=tuple(k for k in o.kinds if k in keep)) for o in offers]
    return [o for o in cut if o.kinds]


def _strength(offers: list[Offer], terms: list[Term], form: str, vocab: Vocabulary) -> dict[str, int]:
    """How much of the measure is about each kind: 2 for the title, 1 per mention, 1 for a sentence
    naming enterprises. Used to rank, so a passing mention comes after a measure about it."""
    out: dict[str, int] = {}
    for t in terms:
        if t.category == "kind":
            out[t.key] = out.get(t.key, 0) + (2 if t.start < 0 else 1)
    for k in {k for o in offers if o.start >= 0 and vocab.enterprise and vocab.enterprise.search(form[o.start:o.end])
              for k in o.kinds}:
        out[k] = out.get(k, 0) + 1
    return out


def _dedupe(terms: list[Term]) -> list[Term]:
    seen, out = set(), []
    for t in terms:
        if (t.category, t.key) not in seen:
            seen.add((t.category, t.key))
            out.append(t)
    return out


def _quote_ok(t: Term, text: str, title: str) -> bool:
    """The quote is the measure's words: at its offsets in the text, or (offsets -1) in its title."""
    return bool(t.quote) and (text[t.start:t.end] == t.quote if t.start >= 0 else t.quote in title)


def checked(labels: MeasureLabels, measure: Measure) -> MeasureLabels:
    """Labels whose quotes are in the measure's words; any other is dropped (and logged)."""
    text = measure.text

    def keep(t: Term) -> bool:
        ok = _quote_ok(t, text, measure.title)
        if not ok:
            log.warning("%s: label %s=%s dropped: its quote is not in the measure", measure.measure_id, t.category,
                        t.key)
        return ok

    offers = []
    for o in labels.offers:
        if o.quote not in text and not (o.start < 0 and o.quote == measure.title):
            log.warning("%s: an offer was dropped: its sentence is not in the measure", measure.measure_id)
            continue
        offers.append(replace(o, beneficiaries=tuple(t for t in o.beneficiaries if keep(t)),
                              places=tuple(t for t in o.places if keep(t)),
                              mentions=tuple(t for t in o.mentions if keep(t)),
                              conditional=o.conditional if o.conditional is None or keep(o.conditional) else None))
    return replace(labels, terms=tuple(t for t in labels.terms if keep(t)), offers=tuple(offers))


# ---------------------------------------------------------------- staff corrections
def overrides_path(seeds_dir: Path) -> Path:
    return Path(seeds_dir) / OVERRIDES_FILE


def load_overrides(seeds_dir: Path) -> dict[str, dict]:
    path = overrides_path(seeds_dir)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}): fix it (labels are unchanged until then)") from exc
    measures = data.get("measures", {}) if isinstance(data, dict) else None
    if not isinstance(measures, dict):
        raise ConfigError(f"{path}: expected {{\"measures\": {{MEASURE_ID: correction}}}}")
    return {k: v for k, v in measures.items() if not k.startswith("_")}


def apply_override(labels: MeasureLabels, correction: dict, measure: Measure, vocab: Vocabulary) -> MeasureLabels:
    """A staff correction on top of the rules' labels. Recognised keys:

    - `remove_kinds`: kinds no offer of the measure makes;
    - `add_offer`: {"quote": words of the measure, "kinds": [...], "beneficiaries": {category: [key]}}
      (the quote must be in the measure's text, else the correction is refused);
    - `districts`: the districts the whole measure applies to;
    - `not_a_support`: true when the measure offers enterprises nothing to take up;
    - `note`: shown to staff.
    """
    offers = list(labels.offers)
    notes = list(labels.notes)
    if correction.get("not_a_support"):
        offers = []
    remove = set(correction.get("remove_kinds", ()))
    if remove:
        offers = [replace(o, kinds=tuple(k for k in o.kinds if k not in remove)) for o in offers]
        offers = [o for o in offers if o.kinds]
    add = correction.get("add_offer")
    if add:
        quote = str(add.get("quote", ""))
        start = measure.text.find(quote) if quote else -1
        if start < 0:
            raise ConfigError(f"{OVERRIDES_FILE}: {measure.measure_id}: add_offer quote is not in the measure's text")
        kinds = tuple(k for k in add.get("kinds", ()) if k in vocab.kinds)
        bens = tuple(Term(cat, key, quote, start, start + len(quote))
                     for cat, keys in dict(add.get("beneficiaries", {})).items() for key in keys)
        offers.append(Offer(start, start + len(quote), quote, kinds, bens))
    if "districts" in correction:
        districts = tuple(correction["districts"])
        offers = [replace(o, districts=districts) for o in offers]
    if correction.get("note"):
        notes.append(str(correction["note"]))
    return replace(labels, offers=tuple(offers), kinds=tuple(dict.fromkeys(k for o in offers for k in o.kinds)),
                   corrected=True, notes=tuple(notes))


# ---------------------------------------------------------------- the labels file
@dataclass(frozen=True)
class LabelSet:
    """Every measure's labels (corrections applied), and the version of the library they describe."""

    labels: dict[str, MeasureLabels]
    vocabulary: str
    library_version: str


def label_measures(documents: dict[str, Document], measures: Iterable[Measure], vocab: Vocabulary,
                   previous: dict[str, dict] | None = None) -> dict[str, MeasureLabels]:
    out = {}
    previous = previous or {}
    for m in measures:
        doc = documents[m.doc_id]
        old = previous.get(m.measure_id)
        if old and old.get("content_hash") == content_hash(m, doc) and old.get("vocabulary") == labels_key(vocab):
            try:
                out[m.measure_id] = checked(MeasureLabels.from_json(old), m)
                continue
            except (KeyError, TypeError, ValueError):
                pass
        out[m.measure_id] = make_labels(m, doc, vocab)
    return out


def read_stored(index_dir: Path) -> dict[str, dict]:
    path = Path(index_dir) / LABELS_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            return {}
        return dict(data.get("measures", {}))
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        log.warning("%s is unreadable; labels are made again", path)
        return {}


def write_labels(index_dir: Path, seeds_dir: Path, documents: Iterable[Document], measures: Iterable[Measure],
                 previous: dict[str, dict] | None = None) -> int:
    """Label every measure (reusing unchanged ones) and write `labels.json` atomically. The index
    build calls this once, after the index is in place. Returns how many measures were labelled anew."""
    vocab = load_vocabulary(seeds_dir)
    docs = {d.doc_id: d for d in documents}
    measures = list(measures)
    previous = read_stored(index_dir) if previous is None else previous
    labels = label_measures(docs, measures, vocab, previous)
    fresh = sum(1 for mid, lab in labels.items()
                if (previous.get(mid) or {}).get("content_hash") != lab.content_hash
                or (previous.get(mid) or {}).get("vocabulary") != labels_key(vocab))
    body = {"format": FORMAT, "vocabulary": labels_key(vocab),
            "measures": {mid: lab.to_json() for mid, lab in sorted(labels.items())}}
    index_dir = Path(index_dir)
    fd, tmp = tempfile.mkstemp(prefix=".labels-", suffix=".json", dir=index_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f, ensure_ascii=False, indent=1)
        os.chmod(tmp, 0o644)
        os.replace(tmp, index_dir / LABELS_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return fresh


def library_version(manifest: dict) -> str:
    return str(manifest.get("fingerprint", ""))[:12] or "unversioned"


def load_labels(index_dir: Path, seeds_dir: Path, documents: dict[str, Document], measures: dict[str, Measure],
                manifest: dict) -> LabelSet:
    """Stored labels for the index's measures (a missing or stale one is made now), corrections applied."""
    vocab = load_vocabulary(seeds_dir)
    labels = label_measures(documents, measures.values(), vocab, read_stored(index_dir))
    for mid, correction in load_overrides(seeds_dir).items():
        if mid in labels:
            labels[mid] = apply_override(labels[mid], correction, measures[mid], vocab)
        else:
            log.warning("%s: correction for %s, which is not in the index", OVERRIDES_FILE, mid)
    return LabelSet(labels, labels_key(vocab), library_version(manifest))
