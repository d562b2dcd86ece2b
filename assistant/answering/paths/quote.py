"""A quote of the lead measure: grounded by construction, the answer when generation fails or says
nothing that survives verification, and for a question whose lead measure is in the other language."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from ...corpus.clean import to_simplified
from ...corpus.sentences import measure_sentences
from ...errors import BackendError
from ...types import Citation, Outcome
from .. import quoting
from ..citing import expiry_notes, label
from ..events import StreamEvent
from ..evidence import choose_sentences, select_sentences
from ..facts import figures
from ..turn import Services, Turn
from .refusal import refusal
from .translate import stored, translate

log = logging.getLogger(__name__)

#: token budgets of a quote, and of its translation (a shorter one is tried when the first is not kept;
#: the last is the measure's most relevant sentence alone)
QUOTE_TOKENS = 120
TRANSLATION_TOKENS = (80, 40, 1)

UNAVAILABLE_NOTICE = {
    "en": "The language model is unavailable right now, so this is the closest measure quoted directly.",
    "zh": "语言模型暂时不可用，以下直接引用最相关的措施原文。",
}


def quote(services: Services, turn: Turn, error: str = "", needs_figure: bool = False) -> Iterator[StreamEvent]:
    """Quote the lead measure, translated when it is in the other language and the model works. A
    question asking for a figure gets the quote only if it states one. `error`: the model's failure,
    when that is why this is a quote (no translation is tried then, and the notice says so)."""
    best = turn.lead
    language = turn.language
    text = select_sentences(best.measure.text, turn.plan_tokens, QUOTE_TOKENS, services.count)
    if needs_figure and not figures(text):
        answer = refusal(services, turn, "amount_not_stated", Outcome.FIGURE_REFUSAL)
        yield StreamEvent("delta", answer.answer)
        yield StreamEvent("final", answer=answer)
        return
    name = label(best, language)
    translated = None
    if not error and best.document.language != language:
        found = stored_translation(services, best.measure.text, turn.plan_tokens, language)
        if found is not None:
            # A figure question's quote must keep its figure: the original, if the sentences with a
            # kept translation lost it.
            if found.text and not (needs_figure and not figures(found.source)):
                translated = found.text
        else:
            translated, error = translate_now(services, best.measure.text, turn.plan_tokens, language)
    original = to_simplified(text) if language == "zh" else text
    body = quoting.whole_answer(name, translated or original, language, translated=bool(translated))
    cited = [Citation(n=1, measure=best.measure, document=best.document,
                      expired=best.document.expired(services.today()))]
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


@dataclass(frozen=True)
class StoredQuote:
    source: str  # the measure's sentences chosen, as the document writes them
    text: str | None  # their stored translations joined; None when none of its sentences has one kept


def stored_translation(services: Services, measure_text: str, plan_tokens: set[str], language: str) -> StoredQuote | None:
    """The measure's sentences that best answer the question, among those with a kept translation made
    at ingestion, in translation; None when the library holds no translation of some sentence of it
    (added with `--no-translate`, or stored only in part)."""
    sentences = measure_sentences(measure_text)
    entries = [stored(services, s, language) for s in sentences]
    if not entries or any(e is None for e in entries):
        return None
    among = {i for i, e in enumerate(entries) if e.text}
    if not among:
        return StoredQuote(measure_text, None)
    keep = choose_sentences(sentences, plan_tokens, QUOTE_TOKENS, services.count, among)
    joiner = "" if language == "zh" else " "
    source_joiner = "" if language == "en" else " "
    return StoredQuote(source_joiner.join(sentences[i] for i in keep), joiner.join(entries[i].text for i in keep))


def translate_now(services: Services, measure_text: str, plan_tokens: set[str], language: str) -> tuple[str | None, str]:
    """The model's translation of the quote, made now: (the translation or None, the model's error or "").
    A shorter quote, when the first is not kept, has fewer figures and terms to get wrong."""
    try:
        tried: set[str] = set()
        for budget in TRANSLATION_TOKENS:
            part = select_sentences(measure_text, plan_tokens, budget, services.count)
            if part in tried:
                continue
            tried.add(part)
            translated = translate(services, part, language)
            if translated:
                return translated, ""
    except BackendError as exc:  # the original is quoted, with the notice that the model failed
        log.warning("translation failed, quoting the original: %s", exc)
        return None, str(exc)
    return None, ""
