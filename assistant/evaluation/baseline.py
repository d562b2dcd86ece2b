"""The plain pipeline every report is compared against: raw paragraphs (no cleaning), dense-only
top-5, a plain prompt, no evidence gate and no verification. Its citations are mapped back to the
measure each paragraph overlaps most, so both pipelines are scored on the same gold measures."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..answering.facts import markers
from ..corpus.clean import clean_lines, normalize_for_index
from .metrics import char_ngrams

PLAIN_PROMPT = (
    "Answer the question using only the numbered sources below. Cite sources like [1]. "
    "If the sources do not contain the answer, say so.\n\n{sources}\n\nQuestion: {question}"
)
REFUSAL_HINTS = re.compile(
    r"do(?:es)? not (?:contain|mention|provide|specify|include)|not (?:mentioned|specified|provided)|no information|"
    r"cannot (?:answer|find)|未(?:提及|提到|说明|涉及)|没有(?:提及|提到|相关|说明|涉及)|无法(?:回答|找到|确定)|不包含", re.I)
MAX_CHARS = 900


@dataclass(frozen=True)
class Paragraph:
    doc_id: str
    text: str
    measure_id: str | None  # the measure this paragraph overlaps most, for scoring only


def paragraphs(seeds_dir: Path, catalog: dict[str, str], measures) -> list[Paragraph]:
    """Blank-line paragraphs of the raw files; a file without blank lines is grouped line by line."""
    grams = {m.measure_id: char_ngrams(m.text, 6) for m in measures}
    out = []
    for file, doc_id in catalog.items():
        raw = (seeds_dir / file).read_text(encoding="utf-8")
        blocks = [b for b in re.split(r"\n\s*\n", raw) if b.strip()]
        if len(blocks) < 10:  # no blank lines: group lines up to the size limit
            blocks, cur = [], ""
            for line in raw.splitlines():
                if cur and len(cur) + len(line) > MAX_CHARS:
                    blocks.append(cur)
                    cur = ""
                cur += line + "\n"
            blocks.append(cur)
        for b in blocks:
            for i in range(0, len(b), MAX_CHARS):
                piece = b[i:i + MAX_CHARS].strip()
                if piece:
                    g = char_ngrams(" ".join(clean_lines(piece)), 6)
                    best = max(grams, key=lambda mid: len(g & grams[mid]) if mid.startswith(doc_id + "#") else -1)
                    overlap = len(g & grams[best]) / max(1, len(g))
                    out.append(Paragraph(doc_id, piece, best if overlap >= 0.3 else None))
    return out


class PlainPipeline:
    @classmethod
    def for_library(cls, settings, measures, embedder) -> PlainPipeline:
        """The baseline over the library's raw files, its vectors cached under the evaluation's cache."""
        from ..corpus.catalog import load_catalog

        catalog = {file: e.doc_id for file, e in load_catalog(settings.seeds_dir).items()}
        return cls(paragraphs(settings.seeds_dir, catalog, list(measures)), embedder, settings.cache_dir / "eval")

    def __init__(self, paragraphs: list[Paragraph], embedder, cache_dir: Path, k: int = 5):
        self.paragraphs = paragraphs
        self.embedder = embedder
        self.k = k
        digest = hashlib.sha256((embedder.id + "".join(p.text for p in paragraphs)).encode()).hexdigest()[:16]
        path = cache_dir / f"baseline-vectors-{digest}.npy"
        if path.exists():
            self.vectors = np.load(path, allow_pickle=False)
        else:
            self.vectors = np.vstack([embedder.embed_passages([p.text for p in paragraphs[i:i + 16]])
                                      for i in range(0, len(paragraphs), 16)]).astype(np.float32)
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, self.vectors, allow_pickle=False)

    def retrieve(self, question: str) -> list[Paragraph]:
        q = self.embedder.embed_queries([question])[0]
        order = np.argsort(-(self.vectors @ q))[: self.k]
        return [self.paragraphs[i] for i in order]

    def messages(self, question: str, shown: list[Paragraph]) -> list[dict]:
        sources = "\n\n".join(f"[{i}] {p.text}" for i, p in enumerate(shown, 1))
        return [{"role": "user", "content": PLAIN_PROMPT.format(sources=sources, question=question)}]

    @staticmethod
    def score_view(question: str, reply: str, shown: list[Paragraph]) -> dict:
        """The reply as the evaluation sees it: cited measures per marker, refusal by its wording."""
        cited = [shown[n - 1].measure_id if 1 <= n <= len(shown) else None for n in markers(reply)]
        return {"answer": reply, "refused": bool(REFUSAL_HINTS.search(reply)) and len(set(markers(reply))) == 0,
                "markers": markers(reply), "valid_markers": [1 <= n <= len(shown) for n in markers(reply)],
                "cited_measures": cited, "sources": {i: p.text for i, p in enumerate(shown, 1)},
                "normalized": normalize_for_index(reply)}
