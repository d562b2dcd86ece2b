"""One inference worker with a bounded queue in front of it, shared by the chat UI and the API.

Two cores run one model generation at a time well and two badly, so every question, whichever door
it came through, waits here for the single worker thread. A question that finds the queue full is
turned away at once (the API answers 503 with Retry-After, the UI says it is busy) instead of
waiting minutes. The consumer reads the stream of events from its Job; when it goes away (a closed
tab, a dropped connection) it cancels the job and the worker stops generating for it.
"""

from __future__ import annotations

import functools
import logging
import math
import queue
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..answering.assistant import Assistant, StreamEvent
from ..answering.llm import PrefixStateStore
from ..types import Answer
from .deadline import DeadlineLLM, with_deadline

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """Every place in the queue is taken; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"busy: {retry_after}s")
        self.retry_after = retry_after


class Starting(Exception):
    """The model is still loading."""

    def __init__(self, retry_after: int = 10):
        super().__init__("starting")
        self.retry_after = retry_after


_DONE = object()
END = object()  # what Job.next_event returns after the final event


@dataclass
class Job:
    """One question in flight: the worker puts StreamEvents in, the consumer takes them out."""

    question: str
    history: list[tuple[str, str]]
    submitted: float = field(default_factory=time.perf_counter)
    started: float | None = None
    _events: queue.Queue = field(default_factory=queue.Queue)
    _cancelled: threading.Event = field(default_factory=threading.Event)
    _withdraw: Callable[[Job], None] | None = field(default=None, repr=False)

    @property
    def queue_ms(self) -> float:
        return round(((self.started or time.perf_counter()) - self.submitted) * 1000, 1)

    def cancel(self) -> None:
        """The asker has gone: a waiting job gives up its place in the queue now, a running one
        stops at the model's next piece."""
        if self._cancelled.is_set():
            return
        self._cancelled.set()
        if self._withdraw is not None:
            self._withdraw(self)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def next_event(self, timeout: float | None = None):
        """The next StreamEvent; None on timeout, END after the last; raises what the assistant raised."""
        try:
            item = self._events.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _DONE:
            return END
        if isinstance(item, BaseException):
            raise item
        return item

    def events(self) -> Iterator[StreamEvent]:
        """Blocking iteration for a consumer thread; cancels the job if the consumer stops early."""
        try:
            while True:
                event = self.next_event(timeout=1.0)
                if event is END:
                    return
                if event is not None:
                    yield event
        finally:
            self.cancel()

    def result(self) -> Answer:
        final = None
        for event in self.events():
            if event.kind == "final":
                final = event.answer
        if final is None:
            raise RuntimeError("the answer stream ended without a final answer")
        return final


class InferenceWorker:
    """A single thread answering questions one at a time from a bounded queue.

    Args:
        assistant: the shared Assistant.
        queue_size: questions allowed to wait behind the running one.

    Example:
        >>> worker = InferenceWorker(assistant, queue_size=4)
        >>> job = worker.submit("What support is there for patents?", [])
        >>> job.result().citations[0].measure.label
    """

    def __init__(self, assistant: Assistant, queue_size: int):
        self.assistant = assistant
        self.queue_size = queue_size
        self._pending: deque[Job | Callable[[], None]] = deque()
        self._idle: deque[Callable[[], None]] = deque()  # background chores, run only when nothing is pending
        self._cond = threading.Condition()
        self._running = 0
        self._current: Job | None = None
        self._durations: deque[float] = deque(maxlen=20)
        self._loading = False
        self.load_error: str | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="jxa-inference", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- state
    @property
    def loading(self) -> bool:
        return self._loading

    @property
    def busy(self) -> int:
        """Questions running or waiting."""
        with self._cond:
            return self._running + sum(1 for j in self._pending if isinstance(j, Job))

    # ---------------------------------------------------------------- submit
    def load_model(self) -> None:
        """Load the language model on the worker thread, ahead of any question."""
        def load() -> None:
            try:
                _ = self.assistant.llm
                self._guard_model()
                log.info("language model loaded: %s", self.assistant.llm.id)
                self._queue_warming()
            except Exception as exc:  # reported by /readyz and in the UI, not raised here
                self.load_error = str(exc)
                log.error("the language model could not be loaded: %s", exc)
            finally:
                self._loading = False

        with self._cond:
            self._loading = True
            self._pending.appendleft(load)
            self._cond.notify()

    def _queue_warming(self) -> None:
        """Chores for idle time: the verifier's sentence table (about 15 s the first time, then read from
        disk), then missing prefix states (fast first token) one measure at a time. They run only while
        no question waits: a question is delayed by one step (about a second) at most."""
        def sentences() -> None:
            try:
                self.assistant.sentences.prepare()
            except Exception as exc:  # built on first use instead
                log.warning("sentence table not prepared: %s", exc)

        with self._cond:
            self._idle.append(sentences)
            self._cond.notify()
        llm = self.assistant.llm
        if not isinstance(llm, PrefixStateStore) or llm.prefixes is None:
            return

        def step(messages) -> None:
            try:
                llm.warm(messages)
            except Exception as exc:  # a full disk, say: answers still work, only slower to start
                log.warning("stopped storing prefix states: %s", exc)
                with self._cond:
                    self._idle.clear()

        with self._cond:
            self._idle.extend(functools.partial(step, m) for m in self.assistant.prefix_prompts())
            self._cond.notify()

    def submit(self, question: str, history: list[tuple[str, str]] | None = None) -> Job:
        """Queue a question. Raises Starting while the model loads and Overloaded when the queue is full."""
        if self._loading:
            raise Starting()
        with self._cond:
            if self._stop:
                raise RuntimeError("the inference worker has stopped")
            waiting = sum(1 for j in self._pending if isinstance(j, Job))
            if self._running + waiting >= 1 + self.queue_size:
                raise Overloaded(self._retry_after_locked())
            job = Job(question, list(history or []), _withdraw=self._withdraw)
            self._pending.append(job)
            self._cond.notify()
        return job

    def _withdraw(self, job: Job) -> None:
        with self._cond:
            try:
                self._pending.remove(job)
            except ValueError:
                return  # running or done: the worker sees the flag
        job._events.put(_DONE)

    def run_between_questions(self, task: Callable[[], None]) -> None:
        """Run `task` on the worker thread after the question being answered, before the next one."""
        with self._cond:
            self._pending.appendleft(task)
            self._cond.notify()

    def use_assistant(self, assistant: Assistant) -> None:
        """Answer from now on with `assistant` (on the worker thread, between questions); its missing
        prefix states and sentence table are prepared in idle time as at start."""
        self.assistant = assistant
        with self._cond:
            self._idle.clear()
        if assistant.ready:
            self._guard_model()
            self._queue_warming()

    def _guard_model(self) -> None:
        """Put the loaded model behind a hard deadline (see deadline.py), once."""
        llm = self.assistant.loaded_llm
        if llm is not None and not isinstance(llm, DeadlineLLM):
            self.assistant.set_llm(with_deadline(llm))

    def _retry_after_locked(self) -> int:
        """Seconds until a place in the queue is likely to be free: what is left of the answer being
        generated, judged by the recent median answer time (15 s before any answer is timed).

        Not the time until the whole queue drains: that sent every turned-away client away for
        minutes while places opened one by one behind them, and left the worker idle."""
        typical = statistics.median(self._durations) if self._durations else 15.0
        current = self._current
        elapsed = time.perf_counter() - current.started if current is not None and current.started else 0.0
        return max(1, math.ceil(typical - elapsed))

    def close(self) -> None:
        """Stop after the running question; the waiting ones are told, not left hanging."""
        with self._cond:
            self._stop = True
            self._idle.clear()
            while self._pending:
                item = self._pending.popleft()
                if isinstance(item, Job):
                    item._events.put(RuntimeError("the server is shutting down"))
                    item._events.put(_DONE)
            self._cond.notify()

    # ---------------------------------------------------------------- the thread
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._idle and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                item = self._pending.popleft() if self._pending else self._idle.popleft()
                if isinstance(item, Job):
                    self._running = 1
                    self._current = item
            try:
                if isinstance(item, Job):
                    self._run(item)
                else:
                    item()
            finally:
                with self._cond:
                    self._running = 0
                    self._current = None

    def _run(self, job: Job) -> None:
        if job.cancelled:
            job._events.put(_DONE)
            return
        job.started = time.perf_counter()
        self._guard_model()
        stream = self.assistant.ask_stream(job.question, job.history)
        try:
            for event in stream:
                if job.cancelled:
                    log.info("question abandoned by its asker; generation stopped")
                    break
                job._events.put(event)
            self._durations.append(time.perf_counter() - job.started)
        except Exception as exc:  # handed to the consumer, who turns it into a message
            job._events.put(exc)
        finally:
            stream.close()
            self._guard_model()  # a model loaded lazily by this question is guarded from the next one
            job._events.put(_DONE)
