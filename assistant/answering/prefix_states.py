"""The model's states after prompt prefixes, stored on disk (used by the llama.cpp backend)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)


class PrefixStates:
    """KV states of prompt prefixes, kept on disk in llama.cpp's own sequence-state format (no pickle).

    A prompt that starts like a stored one (system prompt + the lead measure) loads that state and
    evaluates only its tail: prompt evaluation is the bulk of time-to-first-token on a CPU. Each state
    has a JSON sidecar with its tokens, so matching needs no model call; a state that fails to load
    (another llama.cpp build, a truncated file) is skipped and deleted.
    """

    def __init__(self, folder: Path, budget_bytes: int | None = None):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.budget_bytes = budget_bytes
        self._tokens: dict[str, tuple[int, ...]] = {}
        self._bytes: dict[str, int] = {}
        self._used: dict[str, float] = {}  # last use, kept as the sidecar's mtime across restarts
        for side in sorted(folder.glob("*.json")):
            try:
                tokens = tuple(int(t) for t in json.loads(side.read_text())["tokens"])
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("ignoring unreadable prefix state %s", side.name)
                continue
            kv = side.with_suffix(".kv")
            if kv.exists():
                self._tokens[side.stem] = tokens
                self._bytes[side.stem] = kv.stat().st_size
                self._used[side.stem] = side.stat().st_mtime
        self._evict()

    @property
    def total_bytes(self) -> int:
        return sum(self._bytes.values())

    @property
    def full(self) -> bool:
        """No room for another state without evicting one (filling in idle time stops here)."""
        if self.budget_bytes is None or not self._bytes:
            return False
        typical = self.total_bytes / len(self._bytes)
        return self.total_bytes + typical > self.budget_bytes

    def touch(self, name: str) -> None:
        """Mark a state as just used: it is the last to be evicted."""
        if name in self._tokens:
            self._used[name] = time.time()
            with contextlib.suppress(OSError):
                os.utime(self.folder / f"{name}.json", (self._used[name], self._used[name]))

    def _evict(self, keep: str | None = None) -> None:
        """Delete least-recently-used states until the store fits its budget."""
        if self.budget_bytes is None:
            return
        for name in sorted(self._used, key=self._used.get):
            if self.total_bytes <= self.budget_bytes:
                return
            if name != keep:
                log.info("prefix state %s evicted (store over its %d MB budget)", name, self.budget_bytes >> 20)
                self.discard(name)

    def __len__(self) -> int:
        return len(self._tokens)

    @staticmethod
    def name(tokens) -> str:
        return hashlib.sha256(json.dumps(list(tokens)).encode()).hexdigest()[:24]

    def has(self, tokens) -> bool:
        return self.name(tokens) in self._tokens

    def best(self, tokens: list[int]) -> tuple[str, int, tuple[int, ...]] | None:
        """The stored state sharing the longest prefix with `tokens`: (name, shared length, its tokens)."""
        best = None
        # Ties go to the smaller name: the same prompt starts from the same state whatever the order
        # the states were stored in.
        for name, stored in sorted(self._tokens.items()):
            n = shared_prefix(stored, tokens)
            if best is None or n > best[1]:
                best = (name, n, stored)
        return best

    def tokens(self, name: str) -> tuple[int, ...]:
        """The tokens a stored state covers; () when it is not (or no longer) stored."""
        return self._tokens.get(name, ())

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.kv"

    def add(self, tokens, write) -> None:
        """Store a state: `write(path)` writes the KV file; the sidecar goes last, so a crash leaves no
        half-written state that looks complete."""
        name = self.name(tokens)
        tmp = self.folder / f"{name}.kv.tmp"
        write(tmp)
        os.replace(tmp, self.path(name))
        side = self.folder / f"{name}.json.tmp"
        side.write_text(json.dumps({"tokens": list(tokens)}))
        os.replace(side, self.folder / f"{name}.json")
        self._tokens[name] = tuple(tokens)
        self._bytes[name] = self.path(name).stat().st_size
        self._used[name] = time.time()
        self._evict(keep=name)

    def discard(self, name: str) -> None:
        self._tokens.pop(name, None)
        self._bytes.pop(name, None)
        self._used.pop(name, None)
        for suffix in (".kv", ".json"):
            (self.folder / f"{name}{suffix}").unlink(missing_ok=True)


def shared_prefix(a, b) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
