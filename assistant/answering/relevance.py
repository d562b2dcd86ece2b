"""The check before a quote: does the lead measure answer the question?"""

from __future__ import annotations

import logging
import re

from ..errors import BackendError
from .llm import LLM, Scorer
from .turn import Services
from .verify import Evidence

log = logging.getLogger(__name__)


def on_point(services: Services, llm: LLM, messages: list[dict], reply: str, chosen: Evidence, question: str) -> bool:
    """Whether the measure about to be quoted answers the question. Nothing the model wrote survived
    verification (or it was not asked to write), so quoting is only right when the measure itself is
    on point. A model that scores decides by likelihood: how much likelier the question is under the
    measure than with no measure shown (a small model, asked, says YES to nearly anything). Otherwise
    the model is asked, in the same conversation, and any reply but a clear NO keeps the quote. A
    failed call raises BackendError."""
    if isinstance(llm, Scorer):
        try:
            value = lift(services, llm, chosen, question)
        except BackendError as exc:  # scoring off (an untested llama-cpp-python, a plain remote API)
            log.info("relevance by likelihood unavailable (%s); asking for a reply instead", exc)
        else:
            log.info("relevance lift %.3f for measure %s", value, chosen.measure.measure_id)
            return value >= services.settings.relevance_margin
    follow = services.prompting.relevance(messages, reply, chosen.n, question)
    answer = services.replies.text(llm, follow, max_tokens=3)
    return not re.match(r"\W*(?:no\b|否|不)", answer.strip(), re.I)


def lift(services: Services, llm: Scorer, chosen: Evidence, query: str) -> float:
    """Mean log-probability per token of the question under the measure (the rerank's prompt, so
    its prefix state and cached score serve) minus the same with no measure shown."""
    target = query.rstrip()
    under = services.replies.score(llm, services.prompting.rerank(chosen, query), target)
    alone = services.replies.score(llm, services.prompting.prior(query), target)
    return under - alone
