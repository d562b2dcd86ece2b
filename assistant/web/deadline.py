"""A hard deadline around the language model, for the server's single inference worker.

The backends check `timeout_s` between the pieces they stream, so a model that stalls before its
first piece (a long prompt evaluation, a hung remote socket that still trickles, a native call that
never returns) holds the one worker, and every visitor queued behind it, for as long as it likes.
Here the backend's stream is pumped on a helper thread and read with the deadline, so the assistant
gets a BackendError on time and answers from the text instead (mode "extractive").

One pump runs at a time: a new reply waits for an abandoned one to let go of the model, up to its
own deadline, so two generations never overlap even when one of them is stuck.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

from ..answering.llm import LLM, PrefixStates, PrefixStateStore, Scorer
from ..errors import BackendError

_END = object()


class DeadlineLLM:
    """Wraps any LLM backend's generation in a deadline. `with_deadline` gives the wrapper the wrapped
    model's other capabilities (scoring, prefix states), passed through as they are.

    Example:
        >>> llm = with_deadline(get_llm(settings))
        >>> "".join(llm.stream(messages, max_tokens=64, temperature=0, timeout_s=5.0))  # BackendError after 5 s
    """

    def __init__(self, inner: LLM):
        self._inner = inner
        self._pump: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def inner(self) -> LLM:
        return self._inner

    @property
    def id(self) -> str:
        return self._inner.id

    def count_tokens(self, text: str) -> int:
        return self._inner.count_tokens(text)

    def stream(self, messages, *, max_tokens: int, temperature: float, timeout_s: float) -> Iterator[str]:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            previous = self._pump
        if previous is not None and previous.is_alive():
            previous.join(max(0.0, deadline - time.monotonic()))
            if previous.is_alive():
                raise BackendError(f"the language model is still stuck on an earlier reply after {timeout_s:.0f} s")
        pieces: queue.Queue = queue.Queue()
        abandoned = threading.Event()

        def pump() -> None:
            reply = None
            try:
                reply = self._inner.stream(messages, max_tokens=max_tokens, temperature=temperature,
                                           timeout_s=timeout_s)
                for piece in reply:
                    if abandoned.is_set():
                        break
                    pieces.put(piece)
            except BaseException as exc:  # handed to the reader, who raises it in its own thread
                pieces.put(exc)
            finally:
                close = getattr(reply, "close", None)
                if close is not None:
                    close()  # a llama.cpp generation stops here, between two tokens
                pieces.put(_END)

        thread = threading.Thread(target=pump, name="jxa-model-pump", daemon=True)
        with self._lock:
            self._pump = thread
        thread.start()
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BackendError(f"the language model gave no complete reply within {timeout_s:g} s")
                try:
                    item = pieces.get(timeout=left)
                except queue.Empty:
                    continue
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            abandoned.set()  # the pump stops at the model's next piece and lets go of the model


class _Scoring(DeadlineLLM):
    def score(self, messages, target: str) -> float:
        assert isinstance(self._inner, Scorer)
        return self._inner.score(messages, target)


class _Prefixed(DeadlineLLM):
    @property
    def prefixes(self) -> PrefixStates | None:
        assert isinstance(self._inner, PrefixStateStore)
        return self._inner.prefixes

    @prefixes.setter
    def prefixes(self, value: PrefixStates | None) -> None:
        assert isinstance(self._inner, PrefixStateStore)
        self._inner.prefixes = value

    def warm(self, messages) -> bool:
        assert isinstance(self._inner, PrefixStateStore)
        return self._inner.warm(messages)


class _ScoringPrefixed(_Scoring, _Prefixed):
    pass


def with_deadline(inner: LLM) -> DeadlineLLM:
    """`inner` behind the deadline, declaring the same capabilities it has."""
    kind = {(True, True): _ScoringPrefixed, (True, False): _Scoring, (False, True): _Prefixed,
            (False, False): DeadlineLLM}[(isinstance(inner, Scorer), isinstance(inner, PrefixStateStore))]
    return kind(inner)
