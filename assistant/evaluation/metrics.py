"""Offline metrics: retrieval ranks, citations, key facts, refusals, languages, copies, latency."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from ..answering.facts import numbers, strip_markers
from ..corpus.clean import normalize_for_index


# ---------------------------------------------------------------- retrieval
def recall_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    """Share of gold measures in the top k (one gold: hit or miss)."""
    return len(gold & set(ranked[:k])) / len(gold) if gold else 0.0


def mrr_at(ranked: Sequence[str], gold: set[str], k: int = 10) -> float:
    for i, mid in enumerate(ranked[:k], 1):
        if mid in gold:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: Sequence[str], gold: set[str], k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 1) for i, mid in enumerate(ranked[:k], 1) if mid in gold)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(gold), k) + 1))
    return dcg / ideal if ideal else 0.0


# ---------------------------------------------------------------- answers
def compact(text: str) -> str:
    """Index form without spaces or punctuation: how key facts and copies are compared."""
    return re.sub(r"[\W_]+", "", normalize_for_index(text))


def fact_present(fact: str, answer: str) -> bool | None:
    """Is the key fact in the answer? Numbers compare as values (万/亿, Chinese numerals, full-width);
    other facts as compacted text. None when a non-numeric fact in one script cannot be checked in an
    answer written in the other (a Chinese department name in an English answer)."""
    values = numbers(fact)
    if values:
        return values <= numbers(answer)
    f = compact(fact)
    a = compact(strip_markers(answer))
    if f in a:
        return True
    fact_cjk = bool(re.search(r"[\u4e00-\u9fff]", fact))
    answer_cjk = bool(re.search(r"[\u4e00-\u9fff]", answer))
    return None if fact_cjk != answer_cjk else False


def char_ngrams(text: str, n: int = 8) -> set[str]:
    t = compact(text)
    return {t[i:i + n] for i in range(max(0, len(t) - n + 1))}


def copy_ratio(answer: str, sources: Sequence[str], n: int = 8) -> float:
    """Share of the answer's character n-grams found verbatim in the sources (1.0 = a pasted quote)."""
    grams = char_ngrams(strip_markers(answer), n)
    if not grams:
        return 0.0
    pool: set[str] = set()
    for s in sources:
        pool |= char_ngrams(s, n)
    return len(grams & pool) / len(grams)


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
