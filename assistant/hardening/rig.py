"""What every hardening check shares: the Figure it reports, the Rig (settings, a temporary poisoned
corpus and its index, one retriever, the load questions, models) and the fault-injecting wrapper."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BackendError
from ..testing.fakes import Obey, TimedLLM, register_fakes
from .payloads import POISONS_EN, POISONS_ZH, poisoned_seeds

if TYPE_CHECKING:
    from ..config import Settings
    from ..retrieval.hybrid import HybridRetriever

#: the checkout the package runs from: its eval/ set, and the PYTHONPATH of the checks' child processes
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Figure:
    """One check's measurements and the conditions it failed (empty: passed)."""

    key: str
    title: str
    values: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def check(self, condition: bool, failure: str) -> None:
        if not condition:
            self.failures.append(failure)

    def to_json(self) -> dict:
        return {"key": self.key, "title": self.title, "ok": self.ok, "values": self.values,
                "failures": self.failures, "seconds": round(self.seconds, 1)}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ====================================================================== the rig
@dataclass
class Rig:
    """Everything the checks share: settings, the temporary poisoned corpus and its index, one
    loaded retriever, the load questions, and a factory for (instrumented) models.

    Example:
        >>> rig = Rig.create(Settings(), fake=True, work=Path(tempfile.mkdtemp()))
        >>> print(checks.load.check(rig, sessions=4, per_session=2).lines)
    """

    settings: Settings
    fake: bool
    work: Path
    retriever: HybridRetriever
    questions: list[str]
    delay_s: float = 0.05
    _real_llm: Any = None

    @classmethod
    def create(cls, settings, *, fake: bool, work: Path, questions_path: Path | None = None,
               delay_s: float = 0.05) -> Rig:
        from ..retrieval import open_retriever
        from ..retrieval.build import build_index
        from ..retrieval.embedders import get_embedder

        work.mkdir(parents=True, exist_ok=True)
        changes: dict[str, Any] = {"rate_limit_per_min": 0, "db_path": work / "records.sqlite3",
                                   "cache_dir": settings.cache_dir if not fake else work / "cache"}
        if fake:
            register_fakes()
            changes |= {"embedder": "fake-lexical", "llm": f"fake-timed:{delay_s:g}"}
        settings = settings.model_copy(update=changes)
        seeds = poisoned_seeds(settings.seeds_dir, work / "seeds")
        index_dir = work / "index"
        if not fake and (settings.index_dir / "manifest.json").exists():
            shutil.copytree(settings.index_dir, index_dir)  # reuse its vectors: only the new documents are embedded
        embedder = get_embedder(settings.embedder)
        build_index(seeds, index_dir, embedder)
        settings = settings.model_copy(update={"seeds_dir": seeds, "index_dir": index_dir})
        retriever = open_retriever(settings, embedder)
        rig = cls(settings, fake, work, retriever, [], delay_s)
        rig.questions = rig._answerable(questions_path or ROOT / "eval" / "questions.jsonl")
        return rig

    def model(self, delay_s: float | None = None, obey: tuple[Obey, ...] = (), **faults) -> Instrumented:
        if self.fake:
            return Instrumented(TimedLLM(self.delay_s if delay_s is None else delay_s, obey), **faults)
        return Instrumented(self.real_llm(), **faults)

    def fake_model(self, delay_s: float = 0.0) -> Instrumented:
        """The timed fake in either mode: for checks of the web layer, where the model's speed is noise."""
        return Instrumented(TimedLLM(delay_s))

    def real_llm(self):
        if self._real_llm is None:
            from ..answering.llm import get_llm

            self._real_llm = get_llm(self.settings)
        return self._real_llm

    def assistant(self, llm, **changes):
        from ..answering.assistant import Assistant

        return Assistant(self.settings.model_copy(update=changes), self.retriever, llm)

    def app(self, llm, name: str, **changes):
        from ..web.app import create_app

        settings = self.settings.model_copy(update={"db_path": self.work / f"records-{name}.sqlite3", **changes})
        return create_app(settings, self.assistant(llm, **changes))

    def _answerable(self, path: Path) -> list[str]:
        """Answerable single questions from the evaluation set that this corpus's gate lets through
        (screened with an instant fake model: the gate does not depend on the model)."""
        candidates: list[str] = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                item = json.loads(line)
                if item.get("answerable") and not item.get("history") and item.get("type") in ("single", "cross_lingual"):
                    candidates.append(item["question"])
        candidates = candidates or [p for poison in POISONS_EN + POISONS_ZH for p in poison.questions]
        # Alternate languages so a small sample still has both.
        en = [q for q in candidates if not re.search("[\u4e00-\u9fff]", q)]
        zh = [q for q in candidates if re.search("[\u4e00-\u9fff]", q)]
        mixed = [q for pair in zip(en, zh, strict=False) for q in pair] + en[len(zh):] + zh[len(en):]
        screen = self.assistant(TimedLLM(0.0))
        kept = [q for q in mixed[:60] if screen.ask(q).mode != "refusal"]
        if not kept:
            raise RuntimeError("no evaluation question passes the evidence gate on this corpus")
        return kept




class Instrumented:
    """Wraps any LLM (the fake or the real one): counts calls and overlapping calls, and injects
    faults: `fail_after` pieces then the backend dies; a stall of `stall_s` before piece `stall_at`."""

    def __init__(self, inner, *, fail_after: int | None = None, stall_s: float = 0.0, stall_at: int = 1):
        self.inner = inner
        self.id = inner.id
        self.fail_after = fail_after
        self.stall_s = stall_s
        self.stall_at = stall_at
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self._guard = threading.Lock()
        self._release = threading.Event()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def release(self) -> None:
        """End every stall now (so a check does not leave a thread sleeping)."""
        self._release.set()

    def stream(self, messages, **kwargs) -> Iterator[str]:
        with self._guard:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        reply = self.inner.stream(messages, **kwargs)
        try:
            for i, piece in enumerate(reply):
                if self.fail_after is not None and i >= self.fail_after:
                    raise BackendError("the model process died mid-reply (injected fault)")
                if self.stall_s and i == self.stall_at:
                    self._release.wait(self.stall_s)
                yield piece
        finally:
            reply.close()  # the real model holds a lock until its generator is closed
            with self._guard:
                self.active -= 1
