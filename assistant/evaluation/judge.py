"""ALCE-style citation judging, offline: does a sentence's cited measure support what it asserts?

A sentence is supported by a set of measures when
  1. every number in it (compared as values) is theirs: across languages only the numbers written in
     digits, since Chinese numerals sit in set phrases ("一批") a translation drops;
  2. it asserts nothing they do not (assertions.py): no first-person voice, no obligation, condition,
     completed fact, cost, frequency or absolute they do not state, no organisation, programme or class
     they do not name, no number bound to another noun, no purpose of its own;
  3. in their language, at most NOVEL_SHARE of its content words are found neither in them (with the
     glossary's synonyms), their document's titles, the question, nor the words any report uses; in the
     other language, where words cannot be compared, each of its sentences is aligned with them by the
     multilingual embedder (retrieval/sentences.py), at least CROSS_FLOOR similar and within
     CROSS_MARGIN of the closest sentence of the whole corpus.
The bars are set on the calibration half of the hand-written references (eval/judge-references.jsonl:
faithful paraphrases and translations, and claims with a wrong body, modality, purpose, quality, figure,
name or voice) and checked on the test half by tests/test_judge.py; the report shows both.

The product's verifier (answering/verify.py, answering/claims.py) is a different implementation with its
own vocabulary and its own bars, so the judge is not the verifier grading itself. No NLI model is
bundled; with one available locally it would replace the similarity test across languages.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..answering import facts, quoting
from ..answering.verify import mostly_chinese, split_sentences
from ..corpus.clean import normalize_for_index
from ..corpus.gazetteer import chinese_names
from ..retrieval.sentences import SentenceTable
from . import assertions as A

# Calibration half of eval/judge-references.jsonl: supported same-language claims have at most 0.30 of
# their content words new, unsupported ones not caught otherwise at least 0.357; the bar is the middle.
NOVEL_SHARE = 0.33
# Calibration half, claims in the other language: faithful translations were at least 0.807 similar to
# their measure's closest sentence and within 0.018 of the corpus's closest.
CROSS_FLOOR = 0.80
CROSS_MARGIN = 0.02
_QUOTE = re.compile(r"[“\"]([^”\"]{1,2000})[”\"]")
_MARKS = r"\[\d{1,2}(?:\s*[,，、]\s*\d{1,2})*\]"
_CITED_QUOTE = re.compile(rf"[“\"][^\x00]{{1,2000}}?[”\"](?=\s*{_MARKS})")
# A held quotation closed by its markers ends its sentence, whatever follows.
_AFTER_HELD = re.compile(rf"(\x00\d+\x00(?:\s*{_MARKS})+[.。]?)(?=\s*\S)")
# Frames that attribute rather than assert: "According to source [1],", "根据[1]，"; a quotation's own
# frames are the answer paths' (answering/quoting.py).
_FRAMES = [re.compile(p, re.I) for p in (
    r"^\s*(?:yes|no)\s*[,.]\s*", rf"^\s*according to (?:the )?(?:sources?|measures?|policy|policies)?\s*(?:{_MARKS})?\s*,?\s*",
    rf"^\s*根据(?:来源|措施|政策)?\s*(?:{_MARKS})?\s*[，,]?\s*", rf"\s*this is stated in\s*{_MARKS}\s*\.?\s*$")] + list(
    quoting.FRAMES)
_OPENING_ALONE = re.compile(r"^\s*(?:the closest measure is .{0,300}?\.|最相关的措施是.{0,300}?[，,])\s*$", re.I | re.S)


def answer_sentences(body: str) -> list[str]:
    """Sentences of an answer body, split as the product splits a reply (answering/verify.py), with
    quotations (and the frame that introduces one) kept whole and markers with their sentence."""
    quotes: list[str] = []

    def hold(m):
        quotes.append(m.group(0))
        return f"\x00{len(quotes) - 1}\x00"

    # A framed quotation first, then one closed by its citation: it may hold quotations of its own
    # (“…“随申融”…”[1]).
    held = _QUOTE.sub(hold, _CITED_QUOTE.sub(hold, quoting.FRAMED.sub(hold, body)))
    held = _AFTER_HELD.sub(lambda m: m.group(1) + "\n", held)
    out = []
    for p in split_sentences(held):
        while "\x00" in p:
            p = re.sub(r"\x00(\d+)\x00", lambda m: quotes[int(m.group(1))], p)
        p = p.strip()
        if p and re.search(r"\w", p):
            out.append(p)
    return out


def text_language(text: str) -> str:
    """'zh' or 'en', weighed as the verifier does (an English sentence may name a Chinese programme)."""
    return "zh" if mostly_chinese(text) else "en"


def claim_of(sentence: str) -> str:
    """What the sentence asserts: markers, attribution frames and a quote's opening taken off."""
    return _claim(sentence)[0]


def _claim(sentence: str) -> tuple[str, bool]:
    """(the claim, whether it is a quotation: the measure speaking, in its own voice)."""
    plain = facts.strip_markers(sentence)
    plain = quoting.OPENING.sub("", plain)
    for frame in _FRAMES:
        plain = frame.sub("", plain)
    quoted = re.fullmatch(r"\s*[“\"](.+)[”\"]\s*[.。]?\s*", plain, re.S)
    return (quoted.group(1) if quoted else plain).strip(), bool(quoted)


@dataclass(frozen=True)
class Assessment:
    supported: bool
    findings: tuple[A.Finding, ...] = ()

    @property
    def reason(self) -> str:
        return "; ".join(f"{f.kind}: {f.detail}" for f in self.findings)


class Judge:
    def __init__(self, embedder, measures: dict, documents: dict, sentences: SentenceTable | None = None,
                 glossary=None):
        self.embedder = embedder
        self.measures = measures
        self.documents = documents
        self.sentences = sentences or SentenceTable(measures, documents, embedder)
        self.glossary = glossary
        self._views: dict[tuple[str, ...], A.MeasureText] = {}
        self._num: dict[str, set[float]] = {}

    def language(self, mid: str) -> str:
        return self.sentences.language(mid)

    def _numbers(self, mid: str) -> set[float]:
        if mid not in self._num:
            m = self.measures[mid]
            d = self.documents[m.doc_id]
            meta = " ".join(filter(None, [m.text, m.label, d.title, d.doc_number or "",
                                          d.valid_until.isoformat() if d.valid_until else ""]))
            self._num[mid] = facts.numbers(meta)
        return self._num[mid]

    def _view(self, mids: list[str]) -> A.MeasureText:
        key = tuple(sorted(mids))
        if key not in self._views:
            ms = [self.measures[m] for m in key]
            docs = {m.doc_id: self.documents[m.doc_id] for m in ms}
            text = normalize_for_index(" ".join(" ".join([m.text, m.label, m.title, " ".join(m.section_path),
                                                          " ".join(m.departments)]) for m in ms))
            # The issuer names a body only for measures that name no departments of their own.
            frame = normalize_for_index(" ".join(" ".join(filter(None, [
                d.title, d.short_title_en, d.short_title_zh, d.district, d.doc_number or "",
                d.issuer if not any(m.departments for m in ms if m.doc_id == d.doc_id) else ""]))
                for d in docs.values()))
            terms: set[str] = set()
            if self.glossary is not None:
                terms = set(self.glossary.expand(text))
                terms |= set(self.glossary.expand(" ".join(terms)))  # back again: same-language synonyms
            raw = " ".join(m.text + " " + " ".join(m.departments) for m in ms)
            places = tuple(dict.fromkeys(n for d in docs.values() for n in chinese_names(d)))
            self._views[key] = A.MeasureText(self.language(key[0]), text, frame, raw, terms, places)
        return self._views[key]

    def assess(self, sentence: str, mids: list[str], question: str = "") -> Assessment:
        mids = [m for m in dict.fromkeys(mids) if m in self.measures]
        if not mids:
            return Assessment(False, (A.Finding("citation", "no valid citation"),))
        claim, quoted = _claim(sentence)
        if not re.search(r"\w", claim):
            return Assessment(True)
        language = A.claim_language(claim)
        same = [m for m in mids if self.language(m) == language]
        allowed = set().union(*(self._numbers(m) for m in mids))
        stated = facts.numbers(claim) if same else facts.digit_numbers(claim)
        found: list[A.Finding] = []
        extra = stated - allowed
        if extra:
            found.append(A.Finding("figure", "number(s) " + ", ".join(f"{x:g}" for x in sorted(extra)[:3])
                                   + " not in the measure"))
        groups = [same] if same else [[m for m in mids if self.language(m) == lang]
                                      for lang in dict.fromkeys(self.language(m) for m in mids)]
        best: list[A.Finding] | None = None
        for group in groups:
            view = self._view(group)
            local = [f for f in [None if quoted else A.voice(claim), A.purpose(claim, view, question)] if f]
            local += A.stances(claim, view) + A.names(claim, view) + A.figures(claim, view)
            if same:
                novel, n = A.novel_words(claim, view, question)
                if n and len(novel) / n > NOVEL_SHARE:
                    local.append(A.Finding("content", f"{len(novel)} of {n} content words not in the measure: "
                                           + ", ".join(novel[:6])))
            elif not self.sentences.aligned(claim, group, floor=CROSS_FLOOR, margin=CROSS_MARGIN):
                local.append(A.Finding("content", "not aligned with the measure's sentences"))
            if best is None or len(local) < len(best):
                best = local
        found += best or []
        return Assessment(not found, tuple(found))

    def says_nothing(self, sentence: str, mids: list[str], question: str) -> bool:
        """An empty sentence: nothing of its cited measures beyond the question's words (assertions.py)."""
        mids = [m for m in dict.fromkeys(mids) if m in self.measures]
        claim, quoted = _claim(sentence)
        if quoted or not mids or not re.search(r"\w", claim):
            return False
        return A.says_nothing(claim, self._view(mids), question)

    def supports(self, sentence: str, mids: list[str], question: str = "") -> bool:
        return self.assess(sentence, mids, question).supported

    def is_claim(self, sentence: str) -> bool:
        """False for a sentence that only frames a quote or names a measure ("The closest measure is …")."""
        return bool(re.search(r"\w", claim_of(sentence))) and not _OPENING_ALONE.fullmatch(facts.strip_markers(sentence))

    def sentence_scores(self, sentence: str, mids: list[str], question: str = "") -> tuple[bool, list[bool]]:
        """(recall: the citations together support it, precision per citation, as in ALCE)."""
        supported = self.supports(sentence, mids, question)
        precise = []
        for i, mid in enumerate(mids):
            alone = self.supports(sentence, [mid], question)
            rest = mids[:i] + mids[i + 1:]
            needed = supported and bool(rest) and not self.supports(sentence, rest, question)
            precise.append(alone or needed)
        return supported, precise


def reference_rates(judge: Judge, path: Path) -> dict[str, dict]:
    """The judge on the hand-written references, by split: the share of faithful claims it accepts and
    of unsupported ones it rejects, each cited as an answer sentence cites it."""
    refs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    out: dict[str, dict] = {}
    for split in sorted({r["split"] for r in refs}):
        rows = [r for r in refs if r["split"] == split]
        accepted = [judge.supports(r["claim"] + " [1]", [r["measure"]]) for r in rows if r["label"] == "supported"]
        caught = [not judge.supports(r["claim"] + " [1]", [r["measure"]]) for r in rows if r["label"] == "unsupported"]
        out[split] = {"supported": len(accepted), "unsupported": len(caught),
                      "accepted": sum(accepted) / len(accepted) if accepted else None,
                      "caught": sum(caught) / len(caught) if caught else None}
    return out
