"""A quote of the lead measure: grounded by construction, the answer when generation fails or says
nothing that survives verification, and for a question whose lead measure is in the other language."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from ...corpus.clean import has_cjk, to_simplified
from ...corpus.sentences import measure_sentences
from ...errors import BackendError
from ...retrieval.tokenize import tokenize
from ...types import Citation, Outcome
from .. import quoting
from ..citing import expiry_notes, label
from ..events import StreamEvent
from ..figure_kinds import FigureKind
from ..turn import Services, Turn
from .refusal import refusal
from .translate import stored, translate

log = logging.getLogger(__name__)

#: a quote's token budget, and how many of the measure's sentences it may hold
QUOTE_TOKENS = 120
QUOTE_SENTENCES = 3

UNAVAILABLE_NOTICE = {
    "en": "The language model is unavailable right now, so this is the closest measure quoted directly.",
    "zh": "语言模型暂时不可用，以下直接引用最相关的措施原文。",
}


def quote(services: Services, turn: Turn, error: str = "", figure: FigureKind | None = None) -> Iterator[StreamEvent]:
    """Quote the sentences of the lead measure that answer the question, translated when the measure is
    in the other language and the model works. A question asking for a figure gets the quote only if
    it states one of the kind asked. `error`: the model's failure, when that is why this is a quote (no translation is
    tried then, and the notice says so)."""
    best = turn.lead
    language = turn.language
    sentences = measure_sentences(best.measure.text)
    closeness = services.sentences.similarities(turn.query, best.measure.measure_id)
    chosen, lead = answering_lead(sentences, turn.plan_tokens, closeness, services.count, figure=figure)
    text = _joined(sentences, chosen, best.measure.text)
    if figure and not figure.stated(text):
        answer = refusal(services, turn, "amount_not_stated", Outcome.FIGURE_REFUSAL)
        yield StreamEvent("delta", answer.answer)
        yield StreamEvent("final", answer=answer)
        return
    quoted = tuple(sentences[i] for i in chosen)
    name = label(best, language)
    translated = None
    if not error and best.document.language != language:
        found = stored_translation(services, sentences, chosen, lead, language)
        if found is not None:
            # A figure question's quote must keep its figure: the original, if the sentences with a
            # kept translation lost it.
            if found.text and not (figure and not figure.stated(found.source)):
                translated = found.text
                quoted = found.quoted
        else:
            with turn.timed("translate"):
                translated, error = translate_now(services, [text, sentences[chosen[0]]] if sentences else [text],
                                                  language)
    original = to_simplified(text) if language == "zh" else text
    body = quoting.whole_answer(name, translated or original, language, translated=bool(translated))
    cited = [Citation(n=1, measure=best.measure, document=best.document,
                      expired=best.document.expired(services.today()), quoted=quoted)]
    notes = expiry_notes(cited, language)
    if notes:
        body += "\n\n" + notes
    if error:
        outcome = Outcome.UNAVAILABLE_QUOTE
    elif translated:
        outcome = Outcome.TRANSLATED_QUOTE
    elif best.document.language != language:
        outcome = Outcome.ORIGINAL_QUOTE
    else:
        outcome = Outcome.QUOTE
    answer = turn.finish(answer=body, refused=False, citations=tuple(cited), related=(), mode=outcome.mode,
                         notice=UNAVAILABLE_NOTICE[language] if error else "", outcome=outcome)
    yield StreamEvent("delta", body)
    yield StreamEvent("final", answer=answer)


def answering(sentences: list[str], plan_tokens: set[str], closeness: list[float], count, among: set[int] | None = None,
              figure: FigureKind | None = None) -> list[int]:
    """The positions, in order, of the sentences that answer the question: those sharing at least half
    as many of its words as the one sharing most (the closest in meaning first among equals; for a
    figure question, those stating a figure of the kind asked first), at most QUOTE_SENTENCES within QUOTE_TOKENS. Not
    the measure's opening, and not the measure copied out."""
    return answering_lead(sentences, plan_tokens, closeness, count, among, figure)[0]


def answering_lead(sentences: list[str], plan_tokens: set[str], closeness: list[float], count,
                   among: set[int] | None = None, figure: FigureKind | None = None) -> tuple[list[int], int]:
    """`answering`'s positions, and the one of them that answers best (-1 when there is none)."""
    candidates = [i for i in range(len(sentences)) if among is None or i in among]
    if not candidates:
        return [], -1
    close = closeness if len(closeness) == len(sentences) else [0.0] * len(sentences)
    shared = {i: len(set(tokenize(to_simplified(sentences[i].lower()))) & plan_tokens) for i in candidates}
    ranked = sorted(candidates, key=lambda i: (shared[i], close[i]), reverse=True)
    relevant = [i for i in ranked if shared[i] >= max(1, shared[ranked[0]] / 2)] or ranked[:1]
    if figure:  # stable: the figure sentences first, each group still in order of relevance
        relevant.sort(key=lambda i: not figure.stated(sentences[i]))
    keep = [relevant[0]]
    used = count(sentences[relevant[0]])
    for i in relevant[1:QUOTE_SENTENCES]:
        cost = count(sentences[i])
        if used + cost <= QUOTE_TOKENS:
            keep.append(i)
            used += cost
    return sorted(keep), keep[0]


def _joined(sentences: list[str], chosen: list[int], fallback: str) -> str:
    if not chosen:
        return fallback
    joiner = "" if has_cjk(sentences[chosen[0]]) else " "
    return joiner.join(sentences[i] for i in chosen)


@dataclass(frozen=True)
class StoredQuote:
    source: str  # the measure's sentences chosen, as the document writes them
    text: str | None  # their stored translations joined; None when none of its sentences has one kept
    quoted: tuple[str, ...] = ()  # those sentences, one by one


def stored_translation(services: Services, sentences: list[str], chosen: list[int], lead: int,
                       language: str) -> StoredQuote | None:
    """The chosen sentences of the measure in their translations made at ingestion; None when the library
    holds no translation of some sentence of it (added with `--no-translate`, or stored only in part).
    When the sentence that answers best has none kept, the chosen ones are quoted in the original: a
    translated neighbour would answer something else. Another chosen sentence without one is left out."""
    entries = [stored(services, s, language) for s in sentences]
    if not entries or any(e is None for e in entries):
        return None
    if not chosen or not entries[lead].text:
        source_joiner = "" if language == "en" else " "
        return StoredQuote(source_joiner.join(sentences[i] for i in chosen) or " ".join(sentences), None,
                           tuple(sentences[i] for i in chosen))
    keep = [i for i in chosen if entries[i].text]
    joiner = "" if language == "zh" else " "
    source_joiner = "" if language == "en" else " "
    return StoredQuote(source_joiner.join(sentences[i] for i in keep), joiner.join(entries[i].text for i in keep),
                       tuple(sentences[i] for i in keep))


def translate_now(services: Services, parts: list[str], language: str) -> tuple[str | None, str]:
    """The model's translation of the quote, made now: (the translation or None, the model's error or "").
    The answering sentence alone is tried when the whole quote is not kept: fewer figures and terms to
    get wrong."""
    try:
        for part in dict.fromkeys(parts):
            translated = translate(services, part, language)
            if translated:
                return translated, ""
    except BackendError as exc:  # the original is quoted, with the notice that the model failed
        log.warning("translation failed, quoting the original: %s", exc)
        return None, str(exc)
    return None, ""
