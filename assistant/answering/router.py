"""The decision sequence of one question, top to bottom: which path answers it.

    gate (retrieval signals)          not covered          -> paths/refusal.py   (GATE_REFUSAL)
    model cannot be loaded            any question         -> paths/quote.py     (UNAVAILABLE_QUOTE)
    rerank, evidence (rerank.py, evidence.py)
    lead measure in the other language: the check at once (relevance.py)
        NO                                                 -> paths/refusal.py   (MODEL_REFUSAL)
        otherwise                                          -> paths/quote.py     (translated or original quote)
    else the reply, verified as it streams (paths/generated.py; held back for a figure question;
    a dropped sentence may give way to its measure's own sentence, quoted: paths/stand_in.py)
        a figure asked for, none of its kind shown         -> paths/refusal.py   (FIGURE_REFUSAL)
        sentences shown (even if the model then failed)    -> the generated answer (GENERATED)
        nothing shown, the model failed                    -> paths/quote.py     (UNAVAILABLE_QUOTE)
        nothing shown, the reply leaks the canary          -> paths/refusal.py   (MODEL_REFUSAL)
        NOT_COVERED and nothing shown                      -> paths/refusal.py   (MODEL_REFUSAL)
        nothing shown: the check, then                     -> refusal or quote, as above

A new way of answering is a module under paths/ and one branch here.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator

from ..errors import BackendError
from ..types import Answer, Outcome
from .events import StreamEvent
from .evidence import build_evidence
from .figure_kinds import FigureKind, asked_figure
from .gate import decide
from .llm import LLM
from .paths.generated import Reply, generated, read_reply
from .paths.quote import quote
from .paths.refusal import refusal
from .prompting import NOT_COVERED
from .relevance import on_point
from .rerank import rerank
from .turn import Services, Turn

log = logging.getLogger(__name__)


def route(services: Services, turn: Turn) -> Iterator[StreamEvent]:
    gate = decide(turn.question, turn.plan, list(turn.hits), services.retriever.known_words,
                  continues=turn.continues)
    if not gate.covered:
        yield from _refuse(refusal(services, turn, gate.reason, Outcome.GATE_REFUSAL))
        return
    try:
        # Loaded before the evidence is cut, so every question is budgeted with the model's own
        # tokenizer (the first one after start too: the same question always gets the same prompt).
        llm: LLM | None = services.llm()
    except BackendError:
        llm = None
    if llm is not None:
        turn = turn.with_hits(rerank(services, llm, list(turn.hits), turn.query, turn.plan_tokens, turn.timings))
    turn = turn.with_evidence(build_evidence(turn.hits, turn.plan_tokens, services.settings, services.count))
    # Over a lead in the other language a shown sentence would be a translation the small model seldom
    # gets past verification, so the check and the quote come without a reply (docs/decisions.md).
    crossed = turn.lead.document.language != turn.language
    try:
        if llm is None:
            llm = services.llm()
        messages = services.prompting.answer(turn.question, turn.query, turn.language,
                                             list(turn.evidence[:1] if crossed else turn.evidence))
    except BackendError as exc:
        yield from quote(services, turn, error=str(exc))
        return
    figure = asked_figure(turn.question)
    if crossed:
        try:
            with turn.timed("check"):
                relevant = on_point(services, llm, messages, "", turn.lead, turn.query)
        except BackendError as exc:  # as when generation fails: the quote, untranslated, with the notice
            yield from quote(services, turn, error=str(exc))
            return
        yield from _quote_or_refuse(services, turn, relevant, figure)
        return
    reading = read_reply(services, turn, llm, messages)
    held: list[StreamEvent] = []
    with turn.timed("answer"):
        if figure:
            # Held until one of them is known to state a figure: shown at once, they could be followed by
            # the refusal that contradicts them, and a stream never takes back what it sent.
            reply = _drain(reading, held)
        else:
            reply = yield from reading
    if reply.leaked:
        log.warning("the model's reply contained the system canary; what it wrote after the shown sentences "
                    "is dropped")
    if reply.shown:
        # What was shown is verified and stays the answer, even when the model failed or leaked after it.
        if figure and not any(figure.stated(s) for s in reply.shown):
            yield from _refuse(refusal(services, turn, "amount_not_stated", Outcome.FIGURE_REFUSAL))
            return
        yield from held
        yield from generated(services, turn, reply)
        return
    if reply.error:
        yield from quote(services, turn, error=reply.error)
        return
    if reply.leaked or reply.not_covered:
        # A leak is answered exactly as when the model finds nothing: a notice of any kind would tell
        # the prober that the instruction reached the model.
        yield from _refuse(refusal(services, turn, "model", Outcome.MODEL_REFUSAL))
        return
    # Nothing shown: the check, then the quote of retrieval's first (after the rerank), not of the
    # measure the dropped sentences cited most.
    try:
        with turn.timed("check"):
            relevant = on_point(services, llm, messages, reply.raw.replace(NOT_COVERED, ""), turn.lead, turn.query)
    except BackendError:
        relevant = True  # the reply came; a check that fails keeps the quote
    yield from _quote_or_refuse(services, turn, relevant, figure)


def _quote_or_refuse(services: Services, turn: Turn, relevant: bool,
                     figure: FigureKind | None) -> Iterator[StreamEvent]:
    """After the check: the quote of the lead measure, or the refusal a NO calls for."""
    if not relevant:
        yield from _refuse(refusal(services, turn, "model", Outcome.MODEL_REFUSAL))
        return
    yield from quote(services, turn, figure=figure)


def _drain(reading: Generator[StreamEvent, None, Reply], held: list[StreamEvent]) -> Reply:
    """Read a reply to its end, keeping its events in `held` instead of sending them."""
    while True:
        try:
            held.append(next(reading))
        except StopIteration as stop:
            return stop.value


def _refuse(answer: Answer) -> Iterator[StreamEvent]:
    yield StreamEvent("delta", answer.answer)
    yield StreamEvent("final", answer=answer)

