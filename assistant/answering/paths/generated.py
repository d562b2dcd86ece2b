"""A generated answer: the model's reply read sentence by sentence as it streams, each sentence shown
only once verification keeps it (see verify.py), and the answer with its citations at the end.

The reading stops early when nothing more would be shown; `read_reply` reports what happened, and
the router decides what follows (the answer, a refusal, or the check and a quote).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

from ...errors import BackendError
from ...types import Outcome
from ..citing import citations, expiry_notes
from ..events import StreamEvent
from ..llm import LLM
from ..prompting import NOT_COVERED
from ..turn import Services, Turn
from ..verify import Verifier, split_sentences
from .translate import to_language

log = logging.getLogger(__name__)

#: the prompt asks for two to four sentences; more is the model copying out the evidence
MAX_SENTENCES = 4
#: a reply whose first sentences all fail verification is not read past this many
GIVE_UP_AFTER = 2
# Markers, or the start of one, at the end of a reply still streaming ("…完成。[1][").
_OPEN_MARKERS = re.compile(r"(?:\s*\[\d{0,2}(?:\s*[,，、]\s*\d{0,2})*\]?)+\s*$")


@dataclass
class Reply:
    """What reading the model's reply came to."""

    raw: str = ""  # the reply as far as it was read
    shown: list[str] = field(default_factory=list)  # checked sentences streamed to the user
    display: dict[int, int] = field(default_factory=dict)  # evidence number -> citation number shown
    not_covered: bool = False  # the model said NOT_COVERED and nothing was shown
    error: str = ""  # the model failed while replying
    leaked: bool = False  # the reply quoted the system prompt's canary


def sep(language: str) -> str:
    return "" if language == "zh" else " "


def finished_sentences(raw: str, language: str) -> list[str]:
    """The sentences of a reply still streaming that can be judged now. A sentence is finished once
    something other than its markers follows it: "…完成。[" may still become "…完成。[1][2]", and
    judged early it would lose them (the same reply read whole, from the cache, keeps them)."""
    return split_sentences(to_language(_OPEN_MARKERS.sub("", raw), language))[:-1]


def accept(verifier: Verifier, sentence: str, display: dict[int, int]) -> str | None:
    """The sentence as shown (its markers renumbered for the user), or None when verification drops it."""
    checked = verifier.check(sentence).sentences
    if not checked or not checked[0].kept:
        if checked:
            log.info("dropped sentence (%s): %s", checked[0].reason, sentence)
        return None
    s = checked[0]
    for n in s.cited:
        display.setdefault(n, len(display) + 1)
    return re.sub(r"\[(\d{1,2})\]", lambda m: f"[{display.get(int(m.group(1)), m.group(1))}]", s.text)


class _Reader:
    """Verified sentences in, deltas out. Checked sentences are held back until one cites measure [1]:
    an answer resting only on the supporting measures (shown cut to a few sentences) takes the path
    of one where nothing survived (docs/decisions.md)."""

    def __init__(self, verifier: Verifier, reply: Reply, language: str):
        self.verifier = verifier
        self.reply = reply
        self.language = language
        self.pending: list[str] = []
        self.dropped = 0  # sentences that failed verification

    @property
    def full(self) -> bool:
        return len(self.reply.shown) + len(self.pending) >= MAX_SENTENCES

    @property
    def hopeless(self) -> bool:
        return not self.reply.shown and not self.pending and self.dropped >= GIVE_UP_AFTER

    def take(self, sentence: str) -> Iterator[StreamEvent]:
        if self.full:
            return
        text = accept(self.verifier, sentence, self.reply.display)
        if not text:
            self.dropped += 1
            return
        self.pending.append(text)
        if 1 in self.reply.display:
            for held in self.pending:
                self.reply.shown.append(held)
                yield StreamEvent("delta", held if len(self.reply.shown) == 1 else sep(self.language) + held)
            self.pending.clear()


def read_reply(services: Services, turn: Turn, llm: LLM, messages: list[dict]) -> Generator[StreamEvent, None, Reply]:
    """Stream the model's reply through verification; yields the deltas shown, returns the Reply."""
    verifier = Verifier(list(turn.evidence), embed=services.retriever.embedder.embed_passages,
                        question=turn.question, aligned=services.sentences.aligned)
    reply = Reply()
    reader = _Reader(verifier, reply, turn.language)
    done = 0  # sentences of the reply already verified
    hopeless = False
    first_token = None
    try:
        for delta in services.replies.stream(llm, messages):
            if first_token is None:
                first_token = time.perf_counter()
            reply.raw += delta
            if services.canary in reply.raw:
                reply.leaked = True
                return reply
            stripped = reply.raw.strip()
            if stripped.startswith(NOT_COVERED[: len(stripped)]) and len(stripped) < len(NOT_COVERED):
                continue
            if NOT_COVERED in reply.raw:
                break
            complete = finished_sentences(reply.raw, turn.language)
            for sentence in complete[done:]:
                yield from reader.take(sentence)
                done += 1
                hopeless = reader.hopeless
                if hopeless:
                    break
            if hopeless or reader.full:
                break  # nothing more would be shown: stop the model rather than wait for it
    except BackendError as exc:
        log.warning("generation failed, answering extractively: %s", exc)
        reply.error = str(exc)
        return reply
    turn.timings["first_token_ms"] = round(((first_token or time.perf_counter()) - turn.t0) * 1000, 1)
    if NOT_COVERED in reply.raw and not reply.shown:
        reply.not_covered = True
        return reply
    rest = [] if hopeless else split_sentences(to_language(reply.raw.replace(NOT_COVERED, ""), turn.language))[done:]
    for sentence in rest:
        yield from reader.take(sentence)
    if reader.pending:
        log.info("answer dropped: it never cites the lead measure: %s", " ".join(reader.pending))
    return reply


def generated(services: Services, turn: Turn, reply: Reply) -> Iterator[StreamEvent]:
    """The answer made of the shown sentences, with the note on any expired source."""
    body = sep(turn.language).join(reply.shown)
    cited = citations(turn.evidence, reply.display, services.today())
    notes = expiry_notes(cited, turn.language)
    if notes:
        yield StreamEvent("delta", "\n\n" + notes)
        body += "\n\n" + notes
    yield StreamEvent("final", answer=turn.finish(answer=body, refused=False, citations=tuple(cited), related=(),
                                                  mode=Outcome.GENERATED.mode, outcome=Outcome.GENERATED))
