"""A cache of model replies, keyed by the model and the whole prompt as sent (see answering/replies.py).

Used by the evaluation suite so CI need not regenerate answers it has seen: the key covers everything
that shapes the reply, so a changed prompt, model or evidence is always a miss, never a stale hit.
Stored as JSON lines (append-only, readable, safe to load: no pickle)."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)


class AnswerCache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._entries: dict[str, str] = {}
        self.hits = 0
        self.misses = 0
        self._used: set[str] = set()
        if self.path.exists():
            for lineno, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    row = json.loads(line)
                    self._entries[str(row["key"])] = str(row["reply"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    # A torn last line from an interrupted run: skip it, the entry is regenerated.
                    log.warning("%s:%d: unreadable cache line skipped", self.path, lineno)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, *, count: bool = True) -> str | None:
        """The stored reply, or None. With `count=False` the caller tallies the request itself
        (`tally`), when one request looks under more than one key."""
        with self._lock:
            reply = self._entries.get(key)
            self._used.add(key)
        if count:
            self.tally(reply is not None)
        return reply

    def tally(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def put(self, key: str, reply: str, **meta) -> None:
        with self._lock:
            self._used.add(key)
            if self._entries.get(key) == reply:
                return
            self._entries[key] = reply
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "reply": reply, **meta}, ensure_ascii=False) + "\n")

    def compact(self) -> int:
        """Rewrite the file with only the entries this run looked up; returns how many were dropped.
        For a run over the whole set: what it did not ask for belongs to prompts or models now gone.
        Written to a temporary file and renamed, so an interruption leaves the old file whole."""
        with self._lock:
            stale = set(self._entries) - self._used
            if not stale:
                return 0
            keep = {k: v for k, v in self._entries.items() if k in self._used}
            tmp = self.path.with_suffix(".tmp")
            with tmp.open("w", encoding="utf-8") as f:
                for key, reply in keep.items():
                    f.write(json.dumps({"key": key, "reply": reply}, ensure_ascii=False) + "\n")
            os.replace(tmp, self.path)
            self._entries = keep
            return len(stale)
