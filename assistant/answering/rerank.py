"""The rerank: the top measures reordered by the model's likelihood of the question under each.

Asked only when retrieval's first is not clear; each measure's prompt starts from its stored prefix
state, so a score costs the question's own tokens. The margins and what they were set from are in
docs/decisions.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from ..errors import BackendError
from ..types import Hit
from .evidence import build_evidence
from .llm import LLM, Scorer
from .turn import Services

log = logging.getLogger(__name__)

#: how many of retrieval's first measures are scored
RERANK_MEASURES = 3
#: a fused-score lead over the second above which retrieval's first is clear (about one rank step in two lists)
RERANK_CLEAR_LEAD = 0.006


def rerank(services: Services, llm: LLM, hits: list[Hit], query: str, plan_tokens: set[str],
           timings: dict) -> list[Hit]:
    """Put first the one of the top measures under which the model finds the question likeliest
    (query likelihood), when it beats retrieval's first by the margin. The prompt scored is the one
    the answer would begin with, so it is the measure's stored prefix state plus the question."""
    if not isinstance(llm, Scorer) or not services.settings.rerank or len(hits) < 2:
        return hits
    top = hits[0]
    if (top.dense_rank == 1 and top.bm25_rank == 1) or top.score - hits[1].score > RERANK_CLEAR_LEAD:
        return hits
    t = time.perf_counter()
    # Retrieval's first is scored last: it usually stays first, and then llama.cpp still holds
    # its prompt prefix for the answer.
    order = list(range(1, min(RERANK_MEASURES, len(hits)))) + [0]
    scores = [0.0] * len(order)
    for i in order:
        lead = build_evidence([hits[i]], plan_tokens, services.settings, services.count)[0]
        messages = services.prompting.rerank(lead, query)
        try:
            scores[i] = services.replies.score(llm, messages, query.rstrip())
        except BackendError as exc:
            log.warning("reranking skipped: %s", exc)
            return hits
    timings["rerank_ms"] = round((time.perf_counter() - t) * 1000, 1)
    best = max(range(len(scores)), key=scores.__getitem__)
    log.info("rerank scores %s", [round(s, 3) for s in scores])
    if best == 0 or scores[best] - scores[0] <= services.settings.rerank_margin:
        return hits
    ranked = [hits[best]] + [h for i, h in enumerate(hits) if i != best]
    return [replace(h, rank=rank) for rank, h in enumerate(ranked, 1)]
