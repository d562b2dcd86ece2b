"""What the model is shown: the top measure whole, then the next ones cut to their most relevant sentences.

The top measure's block does not depend on the question, so the model's state after it can be stored
once per measure (`jxa warm`) and the prompt evaluated from there: only the short tail is computed
per question.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import Settings
from ..corpus.clean import has_cjk, to_simplified
from ..corpus.sentences import measure_sentences as split_sentences
from ..retrieval.tokenize import tokenize
from ..types import Hit
from .verify import Evidence

#: measures shown to the model: the lead and two supporting ones
EVIDENCE_MEASURES = 3


def select_sentences(text: str, plan_tokens: set[str], budget: int, count: Callable[[str], int]) -> str:
    """The sentences of `text` sharing the most words with the question, in their order, within `budget`
    tokens (the first one chosen always, however long)."""
    sentences = split_sentences(text)
    keep = choose_sentences(sentences, plan_tokens, budget, count)
    joiner = "" if has_cjk(text) else " "
    return joiner.join(sentences[i] for i in keep)


def choose_sentences(sentences: list[str], plan_tokens: set[str], budget: int, count: Callable[[str], int],
                     among: set[int] | None = None) -> list[int]:
    """The positions of the sentences (of those `among`, when given) sharing the most words with the
    question, in order, within `budget` tokens (the first one chosen always, however long)."""
    candidates = [i for i in range(len(sentences)) if among is None or i in among]
    scored = sorted(candidates, key=lambda i: (
        -len(set(tokenize(to_simplified(sentences[i].lower()))) & plan_tokens), i))
    keep: list[int] = []
    used = 0
    for i in scored:
        cost = count(sentences[i])
        if used + cost > budget and keep:
            continue
        keep.append(i)
        used += cost
    return sorted(keep)


def build_evidence(hits: list[Hit] | tuple[Hit, ...], plan_tokens: set[str], settings: Settings,
                   count: Callable[[str], int]) -> list[Evidence]:
    """The top measure whole (up to `lead_tokens`), then the next ones within `evidence_tokens`."""
    chosen = list(hits[:EVIDENCE_MEASURES])
    out = []
    for n, hit in enumerate(chosen, 1):
        budget = settings.lead_tokens if n == 1 else settings.evidence_tokens // max(1, len(chosen) - 1)
        text = hit.measure.text
        if count(text) > budget:
            text = select_sentences(text, plan_tokens, budget, count)
        out.append(Evidence(n, hit.measure, hit.document, text))
    return out
