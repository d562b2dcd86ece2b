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

from ..answering.llm import LLM
from ..errors import BackendError

_END = object()


class DeadlineLLM:
    """Wraps any LLM backend; reads and writes of other attributes go to the wrapped model.

    Example:
        >>> llm = DeadlineLLM(get_llm(settings))
        >>> "".join(llm.stream(messages, max_tokens=64, temperature=0, timeout_s=5.0))  # BackendError after 5 s
    """

    _own = ("_inner", "_pump", "_lock")

    def __init__(self, inner: LLM):
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_pump", None)
        object.__setattr__(self, "_lock", threading.Lock())

    @property
    def inner(self) -> LLM:
        return self._inner

    @property
    def id(self) -> str:
        return self._inner.id

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value) -> None:
        # Tests script the wrapped fake through the assistant (`assistant.llm.script = ...`).
        if name in self._own:
            object.__setattr__(self, name, value)
        else:
            setattr(self._inner, name, value)

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
