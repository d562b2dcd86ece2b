"""The model's replies and scores, through the answer cache when there is one.

The cache key is the model, the whole prompt as sent (every prompt file it was rendered from, and the
evidence, are in it) and whatever else shapes the result; see docs/decisions.md for why it is not
the hash of all prompt files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from ..config import Settings
from .cache import AnswerCache
from .llm import LLM


class Replies:
    def __init__(self, settings: Settings, canary: str, cache: AnswerCache | None = None):
        self.settings = settings
        self.canary = canary
        self.cache = cache

    def key(self, llm: LLM, messages: list[dict], *shaping, tag: str = "") -> str:
        """Reply-cache key. `tag` names a kind of result other than a reply; the canary is secret per
        installation, so the key uses the prompt with it masked out."""
        stable = [dict(m, content=m["content"].replace(self.canary, "CANARY")) for m in messages]
        parts = ((tag,) if tag else ()) + ("v2", llm.id, stable, *shaping)  # v2: this composition of the key
        return hashlib.sha256(repr(parts).encode()).hexdigest()

    def score(self, llm, messages: list[dict], target: str) -> float:
        """llm.score, through the answer cache like replies (same model, prompts and text)."""
        if self.cache is None:
            return llm.score(messages, target)
        key = self.key(llm, messages, target, tag="score")
        hit = self.cache.get(key)
        if hit is not None:
            return float(hit)
        value = llm.score(messages, target)
        self.cache.put(key, repr(value), pipeline="score")
        return value

    def stream(self, llm: LLM, messages: list[dict], max_tokens: int | None = None) -> Iterator[str]:
        """The model's reply; from the answer cache when the same model, prompt and evidence met before."""
        max_tokens = min(max_tokens or self.settings.llm_max_tokens, self.settings.llm_max_tokens)
        if self.cache is None:
            yield from llm.stream(messages, max_tokens=max_tokens,
                                  temperature=self.settings.llm_temperature, timeout_s=self.settings.llm_timeout_s)
            return
        key = self.key(llm, messages, max_tokens, self.settings.llm_temperature)
        hit = self.cache.get(key, count=False)
        # A reply its reader stopped early (the answer had its four sentences) is kept as far as it
        # went; a reader that wants more than that gets the reply generated again past that point.
        partial = self.cache.get(key + ":partial", count=False) if hit is None else None
        self.cache.tally(hit is not None or partial is not None)
        if hit is not None:
            yield hit
            return
        if partial is not None:
            yield partial
        sent = len(partial or "")  # characters the reader already has
        live = ""
        complete = False
        stream = llm.stream(messages, max_tokens=max_tokens,
                            temperature=self.settings.llm_temperature, timeout_s=self.settings.llm_timeout_s)
        try:
            for delta in stream:
                live += delta
                if len(live) > sent:
                    yield live[sent:]
                    sent = len(live)
            complete = True
        finally:
            stream.close()  # stops the model at once (and frees it for the next question)
            if complete:
                self.cache.put(key, live)
            elif len(live) > len(partial or ""):
                self.cache.put(key + ":partial", live, partial=True)

    def text(self, llm: LLM, messages: list[dict], max_tokens: int | None = None) -> str:
        return "".join(self.stream(llm, messages, max_tokens))
