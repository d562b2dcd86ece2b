"""A running server follows the index: when it changes (a document published on the staff page or
with `jxa docs add`), a new Assistant on the new index replaces the old one between two questions.

The new index is loaded beside the old one, off the inference thread; the swap itself runs on that
thread as a queued task, so the question being answered finishes on the index it started with and the
next one starts on the new index. The language model, prompts and reply cache carry over.
"""

from __future__ import annotations

import logging
import threading

from ..answering.assistant import Assistant
from ..retrieval import open_retriever
from ..retrieval.store import read_manifest
from .context import WebContext

log = logging.getLogger(__name__)


def index_version(ctx: WebContext) -> str | None:
    manifest = read_manifest(ctx.settings.index_dir)
    return (manifest or {}).get("files", {}).get("corpus.json")


def reload_assistant(ctx: WebContext) -> Assistant:
    """Load the index now on disk and hand the worker an Assistant on it; returns the new Assistant."""
    old = ctx.assistant
    retriever = open_retriever(ctx.settings, old.retriever.embedder)
    new = Assistant(ctx.settings, retriever, old.llm if old.ready else None, prompts=old.prompts, cache=old.cache)
    done = threading.Event()

    def swap() -> None:
        ctx.assistant = new
        ctx.worker.use_assistant(new)
        done.set()

    ctx.worker.run_between_questions(swap)
    done.wait(timeout=600)
    log.warning("index reloaded: %d documents, %d measures", len(retriever.data.documents),
                len(retriever.data.measures))
    return new


class IndexWatcher:
    """Checks the index's manifest every `interval_s` seconds and reloads when its corpus changed."""

    def __init__(self, ctx: WebContext, interval_s: float):
        self.ctx = ctx
        self.interval_s = interval_s
        self.version = index_version(ctx)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="jxa-index-watch", daemon=True)

    def start(self) -> None:
        if self.interval_s > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> bool:
        """Reload if the index changed since the last look; True when it did."""
        with self._lock:
            version = index_version(self.ctx)
            if version is None or version == self.version:
                return False
            try:
                reload_assistant(self.ctx)
            except Exception as exc:  # a half-written or damaged index: keep answering on the old one
                log.error("index changed but could not be loaded (%s); still answering on the previous one", exc)
                return False
            self.version = version
            return True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()
