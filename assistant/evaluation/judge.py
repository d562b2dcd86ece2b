"""ALCE-style citation judging, offline: does a sentence's cited measure support it?

A sentence is supported by a set of measures when every number in it (compared as values) appears in
them and either it shares at least half of its content words with them, in their language, or each of
its sentences is aligned with them: their sentence closest to it (by embedding) is the closest among all
the corpus's sentences in that language, or nearly (sentences.ALIGN_MARGIN), and at least JUDGE_COSINE
similar. The bars differ from the verifier's on purpose, so the judge is not the verifier grading itself.

Why alignment and not a similarity bar against the whole measure: e5 scores a document's measures
alike. On the hand-written reference claims (eval/judge-references.jsonl: translations and paraphrases
of measure sentences) a whole-measure bar of 0.82 accepted a quarter of the other measures of the same
document for a translation and nearly all of them for a sentence copied from another measure; the
alignment (assistant/retrieval/sentences.py) accepts under 5% (tests/test_judge.py). Across languages
it is the only test, since words cannot overlap. The verifier asks for the same alignment, on top of
its own bars.
No NLI model is bundled; with one available locally it would replace the similarity tests."""

from __future__ import annotations

import re

from ..answering import facts
from ..answering.verify import mostly_chinese
from ..corpus.clean import normalize_for_index
from ..retrieval.sentences import SentenceTable
from ..retrieval.tokenize import tokenize

JUDGE_OVERLAP = 0.5
JUDGE_COSINE = 0.82
_QUOTE = re.compile(r"[“\"]([^”\"]{1,2000})[”\"]")
_MARKS = r"\[\d{1,2}(?:\s*[,，、]\s*\d{1,2})*\]"
_CITED_QUOTE = re.compile(rf"[“\"][^\x00]{{1,2000}}?[”\"](?=\s*{_MARKS})")
# A sentence ends at a full stop (markers after it stay with it), or at a quotation followed by markers.
_END = re.compile(rf"(?<=[.!?。！？])(?:\s*{_MARKS})*[.。]?\s*|(?<=\x00)(?:\s*{_MARKS})+[.。]?\s*")


def answer_sentences(body: str) -> list[str]:
    """Sentences of an answer body, keeping quotations whole and markers with their sentence."""
    quotes: list[str] = []

    def hold(m):
        quotes.append(m.group(0))
        return f"\x00{len(quotes) - 1}\x00"

    # A quotation closed by its citation first: it may hold quotations of its own (“…“随申融”…”[1]).
    held = _QUOTE.sub(hold, _CITED_QUOTE.sub(hold, body))
    parts, last = [], 0
    for m in _END.finditer(held):
        parts.append(held[last:m.end()])
        last = m.end()
    parts.append(held[last:])
    out = []
    for p in parts:
        p = re.sub(r"\x00(\d+)\x00", lambda m: quotes[int(m.group(1))], p).strip()
        if p and re.search(r"\w", p):
            out.append(p)
    return out


def text_language(text: str) -> str:
    """'zh' or 'en', weighed as the verifier does (an English sentence may name a Chinese programme)."""
    return "zh" if mostly_chinese(text) else "en"


class Judge:
    def __init__(self, embedder, measures: dict, documents: dict, sentences: SentenceTable | None = None):
        self.embedder = embedder
        self.measures = measures
        self.documents = documents
        self.sentences = sentences or SentenceTable(measures, documents, embedder)
        self._num: dict[str, set[float]] = {}
        self._tok: dict[str, set[str]] = {}

    def language(self, mid: str) -> str:
        return self.sentences.language(mid)

    def _prep(self, mid: str) -> None:
        if mid in self._tok:
            return
        m = self.measures[mid]
        d = self.documents[m.doc_id]
        meta = " ".join(filter(None, [m.text, m.label, d.title, d.doc_number or "",
                                      d.valid_until.isoformat() if d.valid_until else ""]))
        self._num[mid] = facts.numbers(meta)
        self._tok[mid] = set(tokenize(normalize_for_index(m.text + " " + m.label)))

    def supports(self, sentence: str, mids: list[str]) -> bool:
        mids = [m for m in mids if m in self.measures]
        if not mids:
            return False
        for mid in mids:
            self._prep(mid)
        plain = facts.strip_markers(sentence)
        if not facts.numbers(plain) <= set().union(*(self._num[m] for m in mids)):
            return False
        language = text_language(plain)
        same = [m for m in mids if self.language(m) == language]
        if same and self._shares_words(plain, same):
            return True
        return any(self.sentences.aligned(plain, [m for m in mids if self.language(m) == lang], floor=JUDGE_COSINE)
                   for lang in dict.fromkeys(self.language(m) for m in mids))

    def _shares_words(self, plain: str, mids: list[str]) -> bool:
        words = set(tokenize(normalize_for_index(plain)))
        pool = set().union(*(self._tok[m] for m in mids))
        return bool(words) and len(words & pool) / len(words) >= JUDGE_OVERLAP

    def sentence_scores(self, sentence: str, mids: list[str]) -> tuple[bool, list[bool]]:
        """(recall: the citations together support it, precision per citation, as in ALCE)."""
        supported = self.supports(sentence, mids)
        precise = []
        for i, mid in enumerate(mids):
            alone = self.supports(sentence, [mid])
            rest = mids[:i] + mids[i + 1:]
            needed = supported and bool(rest) and not self.supports(sentence, rest)
            precise.append(alone or needed)
        return supported, precise
