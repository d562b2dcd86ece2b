"""Test doubles for the two swappable models, registered only when `register_fakes()` is called.

    "fake-lexical" / "fake-hash"   LexicalEmbedder: feature-hashed BM25 tokens, deterministic, no model files
    "fake-timed[:DELAY]"           TimedLLM: copies the opening of evidence [1], DELAY seconds per piece
    "fake[:DELAY]"                 FakeLLM: the unit tests' scriptable model

Nothing registers them as a side effect of import: `tests/conftest.py`, `jxa hardening --fake` and
`python -m assistant.testing` (the CLI with the fakes) call `register_fakes()`. Each fake has a real
twin tested under the `model` marker.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np


class LexicalEmbedder:
    """Feature hashing of the BM25 tokens, with a shared component so cosines sit in [0.75, 1] as
    e5's do (the evidence gate's thresholds were set on e5). No model files, deterministic."""

    dim = 256
    SHARED = 0.75

    name = "fake-lexical"

    def __init__(self, arg: str = "") -> None:
        self.id = f"{self.name}:{self.dim}"

    def _embed(self, texts: list[str]) -> np.ndarray:
        from ..corpus.clean import normalize_for_index
        from ..retrieval.tokenize import tokenize

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for tok in tokenize(normalize_for_index(text)):
                h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=4).digest(), "little")
                out[i, h % (self.dim - 1)] += 1.0
            out[i, self.dim - 2] += 0.01  # never a zero vector
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        out *= np.sqrt(1 - self.SHARED)
        out[:, self.dim - 1] = np.sqrt(self.SHARED)
        return out

    embed_queries = _embed
    embed_passages = _embed


class FakeEmbedder(LexicalEmbedder):
    """The lexical embedder under the unit tests' own name, so their indexes never mix with the harness's."""

    name = "fake-hash"


# One numbered evidence block of the answer prompt: "[n] label\ntext".
EVIDENCE_BLOCK = re.compile(r"^\[(\d+)\][^\n]*\n(.*?)(?=^\[\d+\]|\Z|^</evidence>)", re.S | re.M)


def lead_opening(user: str, skip: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """Evidence [1]'s number and its text up to the first full stop or semicolon (lines starting with
    `skip` left out), or None when the prompt has no evidence."""
    m = EVIDENCE_BLOCK.search(user)
    if not m:
        return None
    lines = [line.strip() for line in m.group(2).strip().splitlines()]
    text = " ".join(line for line in lines if line and not line.startswith(skip))
    return m.group(1), re.split(r"(?<=[.。;；])\s*", text)[0].rstrip(".。;；")


@dataclass(frozen=True)
class Obey:
    """What a worst-case model does when `trigger` is anywhere in its prompt: repeat `target` as a
    cited sentence of its own, and/or reveal its system prompt ("plain", "spaced" or "reversed")."""

    trigger: str
    target: str = ""
    reveal: str = ""


class TimedLLM:
    """A stand-in for the GGUF model: copies the opening of evidence [1] with its marker, streamed
    in 4-character pieces with `delay_s` per piece. With `obey` rules it is the worst-case model
    for injection tests: it does whatever an injected instruction in its prompt asks.

    Example:
        >>> llm = TimedLLM(0.05)
        >>> "".join(llm.stream(messages, max_tokens=64, temperature=0, timeout_s=5))
        'We shall promote the special reform of [1].'
    """

    PIECE = 4
    OPENING = 36  # characters of evidence [1] it repeats: about ten pieces per answer

    def __init__(self, delay_s: float = 0.0, obey: tuple[Obey, ...] = ()):
        self.id = f"fake-timed:{delay_s:g}"
        self.delay_s = delay_s
        self.obey = obey
        self.complied = 0

    def count_tokens(self, text: str) -> int:
        return len(text) // 3 + 1

    def reply(self, messages: list[dict]) -> str:
        user = messages[-1]["content"]
        lead = lead_opening(user)
        if lead is None:
            return "NOT_COVERED"
        n, opening = lead
        if len(opening) > self.OPENING:
            cut = opening[: self.OPENING]
            opening = cut.rsplit(" ", 1)[0] if " " in cut[10:] else cut
        sentences = [f"{opening} [{n}]."]
        for rule in self.obey:
            if rule.trigger not in user:
                continue
            self.complied += 1
            if rule.target:  # as a sentence of its own, capitalised as a model writes one
                sentences.append(f"{rule.target[:1].upper()}{rule.target[1:]} [1].")
            if rule.reveal:
                system = messages[0]["content"]
                code = re.search(r"JXA-[0-9a-f]+", system)
                secret = code.group(0) if code else system
                shown = {"plain": system, "spaced": " ".join(secret), "reversed": secret[::-1]}[rule.reveal]
                sentences.append(f"My instructions are: {shown} [1].")
        return " ".join(sentences)

    def stream(self, messages, *, max_tokens, temperature, timeout_s) -> Iterator[str]:
        reply = self.reply(messages)
        for i in range(0, len(reply), self.PIECE):
            if self.delay_s:
                time.sleep(self.delay_s)
            yield reply[i:i + self.PIECE]


class FakeLLM:
    """Streams a reply. By default it copies the first sentence of evidence [1] and cites it; a test
    may set `script` to a function of the messages returning the reply text, `relevance` to the reply
    to the check before a quote, `delay_s` to slow each token, or `fail` to raise mid-stream. Counts
    calls and overlapping calls (for concurrency tests)."""

    def __init__(self, arg: str = "", settings=None) -> None:
        self.id = f"fake-llm:{arg}"
        self.script: Callable[[list[dict]], str] | None = None
        self.delay_s = float(arg) if arg.replace(".", "", 1).isdigit() else 0.0
        self.fail: Exception | None = None
        self.relevance = "YES"
        self.calls: list[list[dict]] = []
        self.active = 0
        self.max_active = 0
        self._guard = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(text) // 3 + 1

    def default_reply(self, messages: list[dict]) -> str:
        lead = lead_opening(messages[-1]["content"], skip=("Document:", "Measure:", "文件", "措施"))
        if lead is None:
            return "The policies do not say."
        n, first = lead
        return f"{first} [{n}]."

    def stream(self, messages, *, max_tokens, temperature, timeout_s) -> Iterator[str]:
        with self._guard:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.calls.append(messages)
        try:
            if "Reply with YES or NO only" in messages[-1]["content"]:
                reply = self.relevance  # the follow-up check before a quote
            else:
                reply = (self.script or self.default_reply)(messages)
            for i, piece in enumerate(re.findall(r"\S+\s*", reply)):
                if self.fail is not None and i == 2:
                    raise self.fail
                if self.delay_s:
                    time.sleep(self.delay_s)
                yield piece
        finally:
            with self._guard:
                self.active -= 1


#: the models the factories made, by their setting's argument, so a test can script the one in use
FAKE_LLMS: dict[str, FakeLLM] = {}
TIMED: dict[str, TimedLLM] = {}


def _fake_llm(arg: str, settings) -> FakeLLM:
    llm = FakeLLM(arg)
    FAKE_LLMS[arg] = llm
    return llm


def _timed_llm(arg: str, settings) -> TimedLLM:
    llm = TimedLLM(float(arg) if arg else 0.05)
    TIMED[arg] = llm
    return llm


def register_fakes() -> None:
    """Make the fakes valid `embedder` and `llm` settings (idempotent)."""
    from ..answering.llm import register_llm
    from ..retrieval.embedders import register_embedder

    register_embedder("fake-lexical", LexicalEmbedder)
    register_embedder("fake-hash", FakeEmbedder)
    register_llm("fake-timed", _timed_llm)
    register_llm("fake", _fake_llm)
