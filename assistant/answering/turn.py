"""One question on its way to an answer: the `Turn` every stage reads, and the `Services` they use."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date

from ..config import Settings
from ..library.translations import Translations
from ..retrieval.hybrid import HybridRetriever, QueryPlan
from ..retrieval.sentences import SentenceTable
from ..types import Answer, Hit
from .llm import LLM
from .prompting import Prompting
from .replies import Replies
from .verify import Evidence


@dataclass(frozen=True)
class Turn:
    """The state of one question, passed from stage to stage (a stage returns a new Turn).

    `query` is the question, or a follow-up with the topic it continues; `plan` is retrieval's reading
    of the query, computed once; `evidence` is empty until the evidence stage; `timings` is filled in
    as the stages run, from `t0` (time.perf_counter) on, and `dropped` as verification drops sentences.
    `continues` when the query took its topic from an earlier turn that was answered (it cited a measure).
    """

    question: str
    query: str
    language: str
    plan: QueryPlan
    hits: tuple[Hit, ...]
    evidence: tuple[Evidence, ...] = ()
    t0: float = field(default_factory=time.perf_counter)
    timings: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)  # sentences verification dropped, by kind ("empty", "unsupported")
    continues: bool = False  # a follow-up of an answered turn: its topic is that turn's

    @property
    def plan_tokens(self) -> set[str]:
        return set(self.plan.tokens)

    @property
    def lead(self) -> Evidence:
        return self.evidence[0]

    def with_hits(self, hits) -> Turn:
        return replace(self, hits=tuple(hits))

    def with_evidence(self, evidence) -> Turn:
        return replace(self, evidence=tuple(evidence))

    @contextmanager
    def timed(self, stage: str):
        """Adds the time spent in the block to timings[f"{stage}_ms"] (the per-stage figures of `jxa bench
        answer`)."""
        t = time.perf_counter()
        try:
            yield
        finally:
            key = f"{stage}_ms"
            self.timings[key] = round(self.timings.get(key, 0.0) + (time.perf_counter() - t) * 1000, 1)

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.t0) * 1000, 1)

    def finish(self, **fields) -> Answer:
        """The Answer for this turn; the first-token time is now unless a stage already set it."""
        self.timings.setdefault("first_token_ms", self.elapsed_ms())
        self.timings["total_ms"] = self.elapsed_ms()
        return Answer(question=self.question, language=self.language, hits=self.hits, timings=self.timings,
                      rewritten_query=self.query, dropped=dict(self.dropped), **fields)


@dataclass
class Services:
    """What the answer paths use, owned by the Assistant.

    `llm()` loads the model on first use and raises BackendError when it cannot; `count(text)` counts
    tokens with the loaded model's tokenizer (an estimate before it loads); `today()` is the date
    expiry is judged on.
    """

    settings: Settings
    retriever: HybridRetriever
    prompting: Prompting
    replies: Replies
    sentences: SentenceTable
    translations: Translations
    llm: Callable[[], LLM]
    count: Callable[[str], int]
    today: Callable[[], date]
    canary: str
