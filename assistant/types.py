"""The typed records passed between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


@dataclass(frozen=True)
class Document:
    """One policy document, cleaned, with the metadata parsed from its text (or the catalog).

    `effective` is set only when the text names the day it takes effect; None means from its issue.
    `supersedes` names the doc_id of the earlier version this one replaces, if any; `superseded_by`
    names the later version that replaces this one.
    """

    doc_id: str
    source_file: str
    sha256: str
    language: str  # "en" or "zh"
    title: str
    short_title_en: str
    short_title_zh: str
    district: str
    issuer: str
    doc_number: str | None
    issued: date | None
    valid_until: date | None
    validity_text: str | None
    effective: date | None = None
    supersedes: str | None = None
    # How the newer version in the library is named (its number, else its title), set when the library
    # is read: a document never states what later replaced it.
    superseded_by: str | None = None

    def expired(self, today: date) -> bool:
        """Whether the document's validity ended before `today` (one without an end date never expires)."""
        return bool(self.valid_until and self.valid_until < today)


@dataclass(frozen=True)
class Measure:
    """One numbered measure of a document: the unit of retrieval and citation."""

    measure_id: str  # stable, e.g. "jingan-2026#I.3"
    doc_id: str
    number: str  # as printed: "3", "(二)"
    title: str  # display script
    section_path: tuple[str, ...]  # display script, outermost first
    text: str  # display script, cleaned
    departments: tuple[str, ...] = ()
    label: str = ""  # human citation label


@dataclass(frozen=True)
class Chunk:
    """What is embedded and indexed: a measure, or one part of a long one with its header repeated."""

    chunk_id: str  # measure_id, or measure_id + "~2" for a later part
    measure_id: str
    doc_id: str
    text: str  # display text of this part, header included
    index_text: str  # normalised, simplified, plus bilingual bridge terms


@dataclass(frozen=True)
class Hit:
    """A retrieved measure, with each retriever's view kept for the evidence gate."""

    rank: int
    score: float  # fused score
    measure: Measure
    document: Document
    dense_rank: int | None = None
    dense_score: float | None = None
    bm25_rank: int | None = None
    bm25_score: float | None = None
    boosted: bool = False
    xl_score: float | None = None  # cosine of the glossary-expanded question, for a measure in the other language

    def to_json(self) -> dict:
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "doc_id": self.document.doc_id,
            "doc_title": self.document.title,
            "measure_id": self.measure.measure_id,
            "label": self.measure.label,
            "text": self.measure.text,
            "valid_until": self.document.valid_until.isoformat() if self.document.valid_until else None,
        }


@dataclass(frozen=True)
class Citation:
    """A measure shown to the user as the source of one or more answer sentences."""

    n: int
    measure: Measure
    document: Document
    expired: bool
    quoted: tuple[str, ...] = ()  # the measure's sentences the answer quotes, as the measure writes them

    def to_json(self) -> dict:
        d, m = self.document, self.measure
        return {
            "n": self.n,
            "doc_id": d.doc_id,
            "doc_title": d.title,
            "doc_number": d.doc_number,
            "issuer": d.issuer,
            "measure_id": m.measure_id,
            "label": m.label,
            "text": m.text,
            "departments": list(m.departments),
            "valid_until": d.valid_until.isoformat() if d.valid_until else None,
            "expired": self.expired,
            "quoted": list(self.quoted),
        }


class Outcome(StrEnum):
    """How a question ended; each has its own module under answering/paths/."""

    GATE_REFUSAL = "gate_refusal"  # retrieval signals: not covered (paths/refusal.py)
    MODEL_REFUSAL = "model_refusal"  # the model said NOT_COVERED, or NO to the check before a quote
    FIGURE_REFUSAL = "figure_refusal"  # a figure was asked for and no checked sentence or quote states one
    GENERATED = "generated"  # verified sentences of the model's reply (paths/generated.py)
    QUOTE = "quote"  # the lead measure quoted, in the asker's language (paths/quote.py)
    TRANSLATED_QUOTE = "translated_quote"  # the lead measure quoted in translation (paths/translate.py)
    ORIGINAL_QUOTE = "original_quote"  # in the other language: no translation passed its checks
    UNAVAILABLE_QUOTE = "unavailable_quote"  # the model failed: the quote with a notice saying so

    @property
    def mode(self) -> str:
        """The coarse kind shown to clients: "generated", "extractive" or "refusal"."""
        if self in (Outcome.GATE_REFUSAL, Outcome.MODEL_REFUSAL, Outcome.FIGURE_REFUSAL):
            return "refusal"
        return "generated" if self is Outcome.GENERATED else "extractive"


@dataclass(frozen=True)
class Answer:
    """What the assistant says, with everything needed to show where it came from."""

    question: str
    language: str
    answer: str
    refused: bool
    citations: tuple[Citation, ...]
    related: tuple[Hit, ...]
    hits: tuple[Hit, ...]
    timings: dict = field(default_factory=dict)
    rewritten_query: str = ""
    mode: str = "generated"  # "generated", "extractive", "refusal" (Outcome.mode)
    notice: str = ""  # a sentence for the user beside the answer ("the model is unavailable..."), or ""
    reason: str = ""  # why a refusal happened: "injection", "off_topic", ..., "model", "amount_not_stated"
    outcome: Outcome | None = None
    dropped: dict = field(default_factory=dict)  # generated sentences verification dropped, by kind

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "language": self.language,
            "answer": self.answer,
            "refused": self.refused,
            "citations": [c.to_json() for c in self.citations],
            "related": [h.to_json() for h in self.related],
            "hits": [h.to_json() for h in self.hits],
            "timings": self.timings,
            "rewritten_query": self.rewritten_query,
            "mode": self.mode,
            "notice": self.notice,
            "reason": self.reason,
            "outcome": self.outcome.value if self.outcome else None,
            "dropped": self.dropped,
        }
