"""What the chat UI, the API and the insights page share: one Assistant, one worker, one record log."""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from ..answering.assistant import Assistant
from ..config import Settings
from ..matching.service import Matcher
from ..records import RecordStore
from .clients import ClientIdentity
from .worker import InferenceWorker


class RateLimiter:
    """At most `per_minute` events per key in any sliding minute (0: unlimited)."""

    def __init__(self, per_minute: int, window_s: float = 60.0):
        self.per_minute = per_minute
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> int:
        """Seconds until `key` may act again (0: now), without counting an event."""
        if self.per_minute <= 0:
            return 0
        now = time.monotonic()
        with self._lock:
            hits = self._hits.get(key)
            while hits and now - hits[0] >= self.window_s:
                hits.popleft()
            if hits and len(hits) >= self.per_minute:
                return max(1, int(self.window_s - (now - hits[0])) + 1)
            return 0

    def check(self, key: str) -> int:
        """0 if allowed (and counted), else the seconds to wait."""
        if self.per_minute <= 0:
            return 0
        now = time.monotonic()
        with self._lock:
            if len(self._hits) > 10_000:  # forget idle clients rather than grow without bound
                self._hits = {k: v for k, v in self._hits.items() if v and now - v[-1] < self.window_s}
            hits = self._hits.setdefault(key, deque())
            while hits and now - hits[0] >= self.window_s:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return max(1, int(self.window_s - (now - hits[0])) + 1)
            hits.append(now)
            return 0


class HealthCheckPart(Protocol):
    """The policy health check as the pages that share this context see it."""

    matcher: Matcher


@dataclass
class WebContext:
    settings: Settings
    assistant: Assistant
    worker: InferenceWorker
    records: RecordStore
    kiosk: bool = False
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(0))
    identity: ClientIdentity = field(init=False)
    health: HealthCheckPart | None = None  # the policy health check (health_check.HealthCheckWeb), set by create_app

    def __post_init__(self) -> None:
        self.identity = ClientIdentity(self.settings)

    @property
    def ready(self) -> bool:
        return self.assistant.ready and not self.worker.loading and self.worker.load_error is None


def new_session_id() -> str:
    """An anonymous id tying one visitor's questions together; nothing about the visitor is in it."""
    return secrets.token_hex(8)
