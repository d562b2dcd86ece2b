"""Every sentence of the corpus, embedded: tells whether a claim is aligned with the measure it cites.

A claim is aligned with a set of measures when each of its sentences has its closest corpus sentence
(among those in the measures' language) inside them, or one nearly as close (ALIGN_MARGIN), at least
`floor` similar. A similarity bar against the whole measure does not do this job: e5 scores the
measures of one document alike, and on hand-written reference claims (eval/judge-references.jsonl)
a bar of 0.84 accepted a sentence copied from another measure of the same document four times in five.

The vectors are computed once per corpus and embedder (about 15 s for ~600 sentences) and kept as
float32 `.npy` files (no pickle) under the cache folder; a file that does not load is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from pathlib import Path

import numpy as np

from ..corpus.sentences import measure_sentences as split_sentences

log = logging.getLogger(__name__)

# How far below the corpus's closest sentence a cited measure's closest may be. Set from the faithful
# reference claims of the calibration half, not from answers: the largest margin, in steps of 0.005, at
# which under 5% of the other measures of a reference's document accept it (figures in docs/decisions.md;
# checked by tests/test_judge.py).
ALIGN_MARGIN = 0.015
# A claim is split into the sentences it aligns by; clause-level splitting would outrun the corpus's.
_CLAIM_SENTENCES = re.compile(r"(?<=[.;!?。；！？])\s*")


def claim_parts(text: str) -> list[str]:
    """The sentences of a claim. A quotation that makes up most of it is the claim: the frame around
    it ("In translation, it states:") is not."""
    opened, closed = re.search(r"[“\"]", text), list(re.finditer(r"[”\"]", text))
    if opened and closed and closed[-1].start() - opened.end() >= 0.5 * len(text):
        text = text[opened.end(): closed[-1].start()]
    return [p for p in _CLAIM_SENTENCES.split(text) if len(p.strip()) >= 6]


class SentenceTable:
    def __init__(self, measures: dict, documents: dict, embedder, cache_dir: Path | None = None):
        self.measures = measures
        self.documents = documents
        self.embedder = embedder
        self.folder = Path(cache_dir) / "sentences" if cache_dir else None
        self._tables: dict[str, tuple[np.ndarray, list[str]]] = {}
        self._texts: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def language(self, mid: str) -> str:
        return self.documents[self.measures[mid].doc_id].language

    def prepare(self) -> None:
        """Load or compute every language's table now (a server does it before its first question)."""
        for language in sorted({d.language for d in self.documents.values()}):
            self._table(language)

    def aligned(self, claim: str, mids: list[str], floor: float, margin: float | None = None) -> bool:
        margin = ALIGN_MARGIN if margin is None else margin
        mids = [m for m in mids if m in self.measures]
        if not mids:
            return False
        vectors, owners = self._table(self.language(mids[0]))
        parts = claim_parts(claim)
        cited = np.array([o in mids for o in owners], dtype=bool)
        if not parts or not cited.any():
            return False
        sims = self.embedder.embed_passages(parts) @ vectors.T
        own = sims[:, cited].max(axis=1)
        return bool(np.all((own >= floor) & (sims.max(axis=1) - own <= margin)))

    def measures_with(self, sentence: str) -> list[str]:
        """The measures one of whose sentences is `sentence` (as split for this table), in any language."""
        wanted = sentence.strip()
        out: dict[str, None] = {}
        for language in sorted({d.language for d in self.documents.values()}):
            self._table(language)
            for owner, text in zip(self._tables[language][1], self._texts[language], strict=True):
                if text.strip() == wanted:
                    out[owner] = None
        return list(out)

    def closest(self, claim: str, mid: str) -> tuple[str, float] | None:
        """The sentence of measure `mid` closest to the claim (as a whole), and their similarity."""
        if mid not in self.measures:
            return None
        language = self.language(mid)
        vectors, owners = self._table(language)
        rows = [i for i, o in enumerate(owners) if o == mid]
        if not rows or not claim.strip():
            return None
        sims = self.embedder.embed_passages([claim])[0] @ vectors[rows].T
        best = int(np.argmax(sims))
        return self._texts[language][rows[best]], float(sims[best])

    def similarities(self, question: str, mid: str) -> list[float]:
        """How close each sentence of measure `mid` (in measure_sentences order) is to the question,
        embedded as a query; [] for an unknown measure or an empty question."""
        if mid not in self.measures or not question.strip():
            return []
        language = self.language(mid)
        vectors, owners = self._table(language)
        rows = [i for i, o in enumerate(owners) if o == mid]
        if not rows:
            return []
        return [float(x) for x in self.embedder.embed_queries([question])[0] @ vectors[rows].T]

    def _table(self, language: str) -> tuple[np.ndarray, list[str]]:
        with self._lock:
            if language not in self._tables:
                owners, texts = [], []
                for mid, m in self.measures.items():
                    if self.documents[m.doc_id].language == language:
                        for s in split_sentences(m.text):
                            owners.append(mid)
                            texts.append(s)
                self._tables[language] = (self._vectors(texts, owners), owners)
                self._texts[language] = texts
            return self._tables[language]

    def _vectors(self, texts: list[str], owners: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.embedder.dim), np.float32)
        key = hashlib.sha256(json.dumps([self.embedder.id, owners, texts], ensure_ascii=False).encode()).hexdigest()[:24]
        path = self.folder / f"{key}.npy" if self.folder else None
        if path is not None and path.exists():
            try:
                vectors = np.load(path, allow_pickle=False)
                if vectors.shape == (len(texts), self.embedder.dim):
                    return vectors
            except (OSError, ValueError) as exc:
                log.warning("sentence vectors %s did not load (%s); computing them again", path, exc)
        vectors = np.ascontiguousarray(self.embedder.embed_passages(texts), dtype=np.float32)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, vectors, allow_pickle=False)
                os.replace(tmp, path)
            except OSError as exc:  # a read-only cache: the table lives in memory only
                log.warning("could not store sentence vectors in %s: %s", path, exc)
        return vectors
