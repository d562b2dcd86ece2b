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
from .. import quoting
from ..citing import citations, expiry_notes
from ..events import StreamEvent
from ..llm import LLM
from ..prompting import NOT_COVERED
from ..turn import Services, Turn
from ..verify import Verifier, split_sentences
from .stand_in import stand_in
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
    stood_in: int = 0  # shown or held sentences that are measure quotations in place of dropped ones
    quoted: dict[int, list[str]] = field(default_factory=dict)  # evidence n -> its sentences quoted as stand-ins


def sep(language: str) -> str:
    return "" if language == "zh" else " "


def finished_sentences(raw: str, language: str) -> list[str]:
    """The sentences of a reply still streaming that can be judged now. A sentence is finished once
    something other than its markers follows it: "…完成。[" may still become "…完成。[1][2]", and
    judged early it would lose them (the same reply read whole, from the cache, keeps them)."""
    return split_sentences(to_language(_OPEN_MARKERS.sub("", raw), language))[:-1]


def accept(verifier: Verifier, sentence: str, display: dict[int, int], dropped: dict | None = None) -> str | None:
    """The sentence as shown (its markers renumbered for the user), or None when verification drops it
    (counted by kind in `dropped`)."""
    checked = verifier.check(sentence).sentences
    if not checked or not checked[0].kept:
        if checked:
            log.info("dropped sentence (%s): %s", checked[0].reason, sentence)
            if dropped is not None:
                kind = "empty" if checked[0].empty else "unsupported"
                dropped[kind] = dropped.get(kind, 0) + 1
        return None
    s = checked[0]
    for n in s.cited:
        display.setdefault(n, len(display) + 1)
    return re.sub(r"\[(\d{1,2})\]", lambda m: f"[{display.get(int(m.group(1)), m.group(1))}]", s.text)


class _Reader:
    """Verified sentences in, deltas out. A sentence verification drops is replaced by its measure's own
    closest sentence, quoted (stand_in.py), when there is one. Sentences are held back until one cites
    measure [1] and one generated sentence is kept: an answer resting only on the supporting measures
    (shown cut to a few sentences), or only on quotations, takes the path of one where nothing
    survived (docs/decisions.md)."""

    def __init__(self, services: Services, turn: Turn, verifier: Verifier, reply: Reply):
        self.services = services
        self.turn = turn
        self.verifier = verifier
        self.reply = reply
        self.language = turn.language
        self.pending: list[str] = []
        self.dropped = 0  # sentences that failed verification
        self.kept = 0  # generated sentences verification kept
        self.quoted: set[str] = set()  # measure sentences quoted in place of dropped ones

    @property
    def full(self) -> bool:
        return len(self.reply.shown) + len(self.pending) >= MAX_SENTENCES

    @property
    def hopeless(self) -> bool:
        return not self.kept and self.dropped >= GIVE_UP_AFTER

    def take(self, sentence: str) -> Iterator[StreamEvent]:
        if self.full:
            return
        text = accept(self.verifier, sentence, self.reply.display, self.turn.dropped)
        if text:
            self.kept += 1
        else:
            self.dropped += 1
            text = self._stand_in(sentence)
            if not text:
                return
        self.pending.append(text)
        if 1 in self.reply.display and self.kept:
            for held in self.pending:
                self.reply.shown.append(held)
                yield StreamEvent("delta", held if len(self.reply.shown) == 1 else sep(self.language) + held)
            self.pending.clear()

    def _stand_in(self, sentence: str) -> str | None:
        found = stand_in(self.services, self.turn, sentence, self.quoted)
        if found is None:
            return None
        self.quoted.add(found.source)
        self.reply.stood_in += 1
        self.reply.quoted.setdefault(found.n, []).append(found.source)
        number = self.reply.display.setdefault(found.n, len(self.reply.display) + 1)
        log.info("quoted its measure in place of a dropped sentence (similarity %.2f): %s", found.similarity,
                 found.source)
        return quoting.in_place(found.text, number, self.language, found.translated)


def read_reply(services: Services, turn: Turn, llm: LLM, messages: list[dict]) -> Generator[StreamEvent, None, Reply]:
    """Stream the model's reply through verification; yields the deltas shown, returns the Reply."""
    verifier = Verifier(list(turn.evidence), embed=services.retriever.embedder.embed_passages,
                        question=turn.question, aligned=services.sentences.aligned)
    reply = Reply()
    reader = _Reader(services, turn, verifier, reply)
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
    cited = citations(turn.evidence, reply.display, services.today(), reply.quoted)
    notes = expiry_notes(cited, turn.language)
    if notes:
        yield StreamEvent("delta", "\n\n" + notes)
        body += "\n\n" + notes
    yield StreamEvent("final", answer=turn.finish(answer=body, refused=False, citations=tuple(cited), related=(),
                                                  mode=Outcome.GENERATED.mode, outcome=Outcome.GENERATED))
