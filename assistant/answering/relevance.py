"""The check before a quote: does the lead measure answer the question?"""

from __future__ import annotations

import re

from .llm import LLM
from .turn import Services
from .verify import Evidence


def on_point(services: Services, llm: LLM, messages: list[dict], reply: str, chosen: Evidence, question: str) -> bool:
    """Ask the model, in the same conversation, whether the measure about to be quoted answers the
    question. Nothing it wrote survived verification (or it was not asked to write), so quoting is
    only right when the measure itself is on point; asked as a follow-up turn, llama.cpp reuses the
    prompt already evaluated and the check costs a few dozen tokens. Any reply but a clear NO keeps
    the quote; a failed call raises BackendError."""
    follow = services.prompting.relevance(messages, reply, chosen.n, question)
    answer = services.replies.text(llm, follow, max_tokens=3)
    return not re.match(r"\W*(?:no\b|否|不)", answer.strip(), re.I)
