"""A quote of the lead measure: grounded by construction, the answer when generation fails or says
nothing that survives verification, and for a question whose lead measure is in the other language."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from ...corpus.clean import to_simplified
from ...errors import BackendError
from ...types import Citation, Outcome
from .. import quoting
from ..citing import expiry_notes, label
from ..events import StreamEvent
from ..evidence import select_sentences
from ..facts import figures
from ..turn import Services, Turn
from .refusal import refusal
from .translate import translate

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
        # A shorter quote, when the first is not kept, has fewer figures and terms to get wrong.
        try:
            tried: set[str] = set()
            for budget in TRANSLATION_TOKENS:
                part = select_sentences(best.measure.text, turn.plan_tokens, budget, services.count)
                if part in tried:
                    continue
                tried.add(part)
                translated = translate(services, part, language)
                if translated:
                    break
        except BackendError as exc:  # the original is quoted, with the notice that the model failed
            log.warning("translation failed, quoting the original: %s", exc)
            error = str(exc)
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
