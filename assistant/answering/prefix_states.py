"""The model's states after prompt prefixes, stored on disk (used by the llama.cpp backend)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class PrefixStates:
    """KV states of prompt prefixes, kept on disk in llama.cpp's own sequence-state format (no pickle).

    A prompt that starts like a stored one (system prompt + the lead measure) loads that state and
    evaluates only its tail: prompt evaluation is the bulk of time-to-first-token on a CPU. Each state
    has a JSON sidecar with its tokens, so matching needs no model call; a state that fails to load
    (another llama.cpp build, a truncated file) is skipped and deleted.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._tokens: dict[str, tuple[int, ...]] = {}
        for side in sorted(folder.glob("*.json")):
            try:
                tokens = tuple(int(t) for t in json.loads(side.read_text())["tokens"])
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("ignoring unreadable prefix state %s", side.name)
                continue
            if side.with_suffix(".kv").exists():
                self._tokens[side.stem] = tokens

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
        for name, stored in self._tokens.items():
            n = shared_prefix(stored, tokens)
            if best is None or n > best[1]:
                best = (name, n, stored)
        return best

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

    def discard(self, name: str) -> None:
        self._tokens.pop(name, None)
        for suffix in (".kv", ".json"):
            (self.folder / f"{name}{suffix}").unlink(missing_ok=True)


def shared_prefix(a, b) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
