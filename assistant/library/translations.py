"""Every measure's sentences translated into the library's other language once, at ingestion.

The request path shows these stored translations instead of asking the model, so the same question
gets the same words on every channel and pays for no translation. They live in the library folder
(`translations.json`, beside the glossary) rather than in the index, which each build replaces whole:
staff can read and correct them there, and `jxa translations check` holds every stored text to the
same checks as a translation made at request time. An entry is keyed by the hash of its sentence and
target language, so an edited measure gets new entries and an unchanged one keeps its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..corpus.sentences import measure_sentences
from ..errors import CorpusError
from ..types import Document, Measure

log = logging.getLogger(__name__)

TRANSLATIONS_FILE = "translations.json"
#: how often, at most, a running server looks whether the file changed (a `jxa docs add` in another
#: process writes it after the index it already follows)
RELOAD_EVERY_S = 1.0
FORMAT = 1


@dataclass(frozen=True)
class StoredTranslation:
    source: str  # the measure's sentence, as the document writes it
    language: str  # the language it is translated into
    text: str | None  # None: no translation passed its checks (the original is quoted)
    model: str  # what made it ("staff" once corrected by hand)


def other_language(language: str) -> str:
    return "en" if language == "zh" else "zh"


def key(source: str, language: str) -> str:
    return hashlib.sha256(f"{language}\0{source.strip()}".encode()).hexdigest()[:24]


class Translations:
    """The library's stored translations; an empty store when the file does not exist yet."""

    def __init__(self, path: Path, entries: dict[str, StoredTranslation] | None = None, follow: bool = False):
        self.path = path
        self.entries = dict(entries or {})
        self._follow = follow
        self._stamp = _stamp(path)
        self._looked = time.monotonic()

    @classmethod
    def load(cls, seeds_dir: Path, follow: bool = False) -> Translations:
        """`follow`: reload when the file changes on disk (a running server's store)."""
        path = seeds_dir / TRANSLATIONS_FILE
        return cls(path, cls._read(path), follow=follow)

    @staticmethod
    def _read(path: Path) -> dict[str, StoredTranslation]:
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = data["entries"]
            entries = {}
            for k, row in rows.items():
                text = row.get("text")
                if not isinstance(row["source"], str) or row["language"] not in ("en", "zh") or not (
                        text is None or isinstance(text, str)):
                    raise ValueError(f"entry {k} is malformed")
                entries[key(row["source"], row["language"])] = StoredTranslation(
                    row["source"], row["language"], text, str(row.get("model", "")))
        except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            raise CorpusError(f"{path} is not a valid translations file ({exc}); fix it, or delete it and run "
                              f"`jxa translations build`") from exc
        return entries

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._looked < RELOAD_EVERY_S:
            return
        self._looked = now
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return
        try:
            self.entries = self._read(self.path)
        except CorpusError as exc:  # the entries held stay in use; the next change is read again
            log.error("%s", exc)
        self._stamp = stamp

    def get(self, source: str, language: str) -> StoredTranslation | None:
        if self._follow:
            self._refresh()
        return self.entries.get(key(source, language))

    def text(self, source: str, language: str) -> str | None:
        """The kept translation of one sentence, or None (not made yet, or none passed its checks)."""
        entry = self.get(source, language)
        return entry.text if entry else None

    def put(self, entry: StoredTranslation) -> None:
        self.entries[key(entry.source, entry.language)] = entry

    def save(self) -> None:
        """Written whole to a temporary file, then renamed: a crash leaves the old file or the new one."""
        rows = {k: {"source": e.source, "language": e.language, "text": e.text, "model": e.model}
                for k, e in sorted(self.entries.items(), key=lambda kv: (kv[1].language, kv[1].source))}
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "entries": rows}, ensure_ascii=False, indent=1) + "\n",
                       encoding="utf-8")
        os.replace(tmp, self.path)
        self._stamp = _stamp(self.path)

    def prune(self, wanted: set[str]) -> int:
        """Drop the entries of sentences no longer in the library; returns how many."""
        stale = [k for k in self.entries if k not in wanted]
        for k in stale:
            del self.entries[k]
        return len(stale)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def library_sentences(documents: Iterable[Document], measures: Iterable[Measure]) -> list[tuple[str, str]]:
    """(sentence, target language) for every sentence of every measure, in library order, once each."""
    language = {d.doc_id: d.language for d in documents}
    out: dict[tuple[str, str], None] = {}
    for m in measures:
        target = other_language(language[m.doc_id])
        for sentence in measure_sentences(m.text):
            out[(sentence, target)] = None
    return list(out)


@dataclass(frozen=True)
class TranslateReport:
    sentences: int  # in the library
    made: int  # translated in this run
    kept: int  # of those, passed their checks
    pruned: int  # entries of sentences no longer in the library, removed


def translate_library(store: Translations, sentences: list[tuple[str, str]],
                      translate: Callable[[str, str], str | None], model: str, *, limit: int | None = None,
                      prune: bool = True, save_every: int = 10,
                      progress: Callable[[int, int], None] | None = None,
                      flaw: Callable[[str, str, str], str] | None = None) -> TranslateReport:
    """Translate every sentence the store lacks with `translate(sentence, language)` (None: not kept;
    it may raise BackendError, which leaves what was made so far saved). A run can be stopped and
    started again: it saves every `save_every` sentences and skips what is stored. With `prune` (and
    no `limit`), entries of sentences not in `sentences` are removed: pass the whole library then.
    With `flaw(source, text, language)`, a stored text it now finds fault with is made again (the
    checks can grow after a text was stored)."""
    wanted = {key(s, lang) for s, lang in sentences}
    pruned = store.prune(wanted) if prune and limit is None else 0
    def wanting(source: str, language: str) -> bool:
        entry = store.get(source, language)
        return entry is None or bool(flaw and entry.text is not None and flaw(source, entry.text, language))

    todo = [(s, lang) for s, lang in sentences if wanting(s, lang)]
    if limit is not None:
        todo = todo[:limit]
    made = kept = 0
    try:
        for i, (source, language) in enumerate(todo, 1):
            out = translate(source, language)
            store.put(StoredTranslation(source, language, out, model))
            made += 1
            kept += out is not None
            if i % save_every == 0:
                store.save()
            if progress:
                progress(i, len(todo))
    finally:
        if made or pruned or not store.path.exists():
            store.save()
    return TranslateReport(len(sentences), made, kept, pruned)


@dataclass(frozen=True)
class Problem:
    source: str
    language: str
    problem: str


def check_library(store: Translations, sentences: list[tuple[str, str]],
                  flaw: Callable[[str, str, str], str]) -> tuple[list[Problem], int]:
    """Every sentence without a stored entry, and every stored text `flaw(source, text, language)`
    finds fault with. Returns the problems and how many sentences have a kept translation."""
    problems = []
    kept = 0
    for source, language in sentences:
        entry = store.get(source, language)
        if entry is None:
            problems.append(Problem(source, language, "no translation stored"))
        elif entry.text is not None:
            why = flaw(source, entry.text, language)
            if why:
                problems.append(Problem(source, language, why))
            else:
                kept += 1
    return problems, kept
