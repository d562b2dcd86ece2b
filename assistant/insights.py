"""Demand insights from the consultation records: volumes, latency, topics and policy gaps.

Topics come from clustering the question embeddings (the assistant's own embedder) with k-means,
k growing with the number of questions. Each topic is labelled by its most distinctive terms
(the BM25 tokenizer's, shown in their surface form) and by the measure closest to its centre.
Policy gaps are the questions the corpus could not answer, near-duplicates grouped together:
what departments should write policy about next.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

import numpy as np

from .corpus.clean import normalize_for_index
from .records import Record
from .retrieval.tokenize import tokenize

# Refusals that say nothing about missing policy: the question was not a policy question at all.
NOT_GAPS = frozenset({"injection", "unlawful", "off_topic"})
HEALTH_CHECK = "health_check"  # the record's mode for a policy health check
GAP_SIMILARITY = 0.9  # cosine above which two refused questions count as the same question
MAX_TOPICS = 12
EXAMPLES = 3


@dataclass(frozen=True)
class DayCount:
    day: date
    total: int
    refused: int


@dataclass(frozen=True)
class Topic:
    """A cluster of similar questions."""

    label: str  # most distinctive terms, " · "-joined
    terms: tuple[str, ...]
    count: int
    examples: tuple[str, ...]
    measure_id: str | None = None  # the measure nearest the cluster centre
    measure_label: str | None = None
    refused: int = 0
    record_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Gap:
    """A question (and its near-duplicates) the corpus could not answer."""

    question: str
    count: int
    examples: tuple[str, ...]
    reasons: tuple[str, ...]
    languages: tuple[str, ...]
    first_asked: datetime
    last_asked: datetime


@dataclass(frozen=True)
class HealthGap:
    """Enterprises of one description whose health check found little or nothing."""

    profile: str  # the redacted profile as recorded
    count: int
    applies: int  # measures that applied (at the last check)
    may_apply: int
    last_checked: datetime


@dataclass(frozen=True)
class Comment:
    created_at: datetime
    question: str
    feedback: int
    comment: str


@dataclass(frozen=True)
class Insights:
    """Everything the insights page and `jxa insights` show."""

    since: datetime | None
    total: int
    answered: int
    refused: int
    feedback_up: int
    feedback_down: int
    p50_ms: float | None
    p95_ms: float | None
    per_day: tuple[DayCount, ...]
    languages: dict[str, int]
    channels: dict[str, int]
    topics: tuple[Topic, ...]
    gaps: tuple[Gap, ...]
    comments: tuple[Comment, ...]
    health_checks: int = 0
    health_gaps: tuple[HealthGap, ...] = ()

    @property
    def feedback_ratio(self) -> float | None:
        """Share of thumbs-up among answers that got a thumb."""
        rated = self.feedback_up + self.feedback_down
        return self.feedback_up / rated if rated else None

    @property
    def answered_ratio(self) -> float | None:
        return self.answered / self.total if self.total else None


# ---------------------------------------------------------------- clustering
def choose_k(n: int) -> int:
    """Clusters for n questions: about sqrt(n/2), at least 1, at most MAX_TOPICS and n."""
    if n <= 0:
        return 0
    if n < 4:
        return 1
    return max(2, min(MAX_TOPICS, n, round(math.sqrt(n / 2))))


def kmeans(x: np.ndarray, k: int, *, seed: int = 0, iterations: int = 50, restarts: int = 8
           ) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means (cosine) with k-means++ seeding, best of several seeded restarts.
    Returns (labels, unit-length centroids); deterministic for a given seed.

    Example:
        >>> labels, centres = kmeans(np.eye(4, dtype=np.float32).repeat(3, axis=0), 4)
        >>> len(set(labels.tolist()))
        4
    """
    x = _unit(np.asarray(x, dtype=np.float32))
    n = x.shape[0]
    if n == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, x.shape[1] if x.ndim == 2 else 0), dtype=np.float32)
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(max(1, restarts)):
        labels, centres = _kmeans_once(x, min(k, n), rng, iterations)
        cohesion = float(np.sum(x * centres[labels]))  # total cosine to own centre: higher is tighter
        if best is None or cohesion > best[0] + 1e-6:
            best = (cohesion, labels, centres)
    assert best is not None
    return best[1], best[2]


def _kmeans_once(x: np.ndarray, k: int, rng: np.random.Generator, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[0]
    centres = [x[rng.integers(n)]]
    for _ in range(1, k):
        dist = np.clip(1.0 - np.max(x @ np.stack(centres).T, axis=1), 0.0, None)
        if dist.sum() <= 1e-9:  # fewer distinct points than k
            break
        centres.append(x[rng.choice(n, p=dist / dist.sum())])
    c = np.stack(centres)
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(iterations):
        new = np.argmax(x @ c.T, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        for j in range(c.shape[0]):
            members = x[labels == j]
            if len(members):
                c[j] = _unit(members.sum(axis=0, keepdims=True))[0]
    # Drop clusters that ended empty and renumber densely.
    used = np.unique(labels)
    remap = np.full(c.shape[0], -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return remap[labels], c[used]


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


# ---------------------------------------------------------------- labels
_LATIN_WORD = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*")


def question_terms(text: str) -> tuple[list[str], dict[str, str]]:
    """BM25 terms of a question and, for stemmed English terms, the word they came from."""
    norm = normalize_for_index(text)
    surface: dict[str, str] = {}
    for word in _LATIN_WORD.findall(norm):
        stems = tokenize(word)
        if stems:
            surface.setdefault(stems[0], word)
    return tokenize(norm), surface


# Words of asking rather than of a topic; in small samples they would otherwise label clusters.
_ASKING = "get getting offer offers give help need want know tell find ask say provide provided available please"


@lru_cache(maxsize=1)
def _asking_terms() -> frozenset[str]:
    return frozenset(tokenize(_ASKING))


def distinctive_terms(cluster: Sequence[set[str]], everyone: Sequence[set[str]], n: int = 3) -> list[str]:
    """Terms frequent in the cluster and rarer elsewhere (a per-cluster TF-IDF)."""
    inside = Counter(t for terms in cluster for t in terms if t not in _asking_terms())
    overall = Counter(t for terms in everyone for t in terms)
    size, total = len(cluster), len(everyone)
    scored = []
    for term, c in inside.items():
        p_in = c / size
        p_all = overall[term] / total
        if c < 2 and size > 2:  # a word one question used says nothing about a topic
            continue
        scored.append((p_in * math.log((p_in + 1e-6) / (p_all + 1e-6) + 1.0), c, term))
    scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
    return [term for _, _, term in scored[:n]]


# ---------------------------------------------------------------- the summary
def compute(records: Iterable[Record], embedder=None, index=None, *, since: datetime | None = None,
            max_gaps: int = 20, now: datetime | None = None, max_embedded: int | None = None) -> Insights:
    """Summarise consultation records.

    Args:
        records: the records to summarise (already filtered by time if wanted).
        embedder: anything with embed_queries(list[str]) -> array; without it there are no topics.
        index: the retriever's IndexData, to name each topic by its nearest measure (optional).
        since: the start of the period, for display.
        max_embedded: topics and gaps come from at most this many of the latest questions, so that a
            flood of questions costs the page a bounded number of embeddings (counts cover all).
    """
    rows = list(records)
    answered = [r for r in rows if not r.refused]
    latencies = np.array([r.total_ms for r in rows if r.total_ms is not None], dtype=np.float64)
    per_day = _per_day(rows, since=since, now=now)
    recent = rows if max_embedded is None else rows[-max_embedded:]
    vectors = _embed(embedder, [r.question for r in recent]) if embedder is not None and recent else None
    comments = tuple(Comment(r.created_at, r.question, r.feedback or 0, r.feedback_comment)
                     for r in reversed(rows) if r.feedback_comment)[:10]
    return Insights(
        since=since,
        total=len(rows),
        answered=len(answered),
        refused=len(rows) - len(answered),
        feedback_up=sum(1 for r in rows if r.feedback == 1),
        feedback_down=sum(1 for r in rows if r.feedback == -1),
        p50_ms=_percentile(latencies, 50),
        p95_ms=_percentile(latencies, 95),
        per_day=per_day,
        languages=dict(Counter(r.language or "?" for r in rows).most_common()),
        channels=dict(Counter(r.channel for r in rows).most_common()),
        topics=_topics(recent, vectors, index) if vectors is not None else (),
        gaps=_gaps(recent, vectors, max_gaps),
        comments=comments,
        health_checks=sum(1 for r in rows if r.mode == HEALTH_CHECK),
        health_gaps=_health_gaps(rows, max_gaps),
    )


def _health_gaps(rows: list[Record], limit: int) -> tuple[HealthGap, ...]:
    """Health checks where nothing applied, grouped by the profile as recorded: the enterprises the
    library has least for."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in rows:
        if r.mode == HEALTH_CHECK and r.refused:
            groups[_gap_key(r.question)].append(r)
    out = []
    for members in groups.values():
        last = max(members, key=lambda m: m.created_at)
        levels = Counter(c.get("level") for c in last.citations)
        out.append(HealthGap(last.question, len(members), levels.get("applies", 0), levels.get("may_apply", 0),
                             last.created_at))
    out.sort(key=lambda g: (-g.count, g.may_apply, -g.last_checked.timestamp()))
    return tuple(out[:limit])


def _embed(embedder, texts: list[str]) -> np.ndarray:
    out = [np.asarray(embedder.embed_queries(texts[i:i + 64]), dtype=np.float32) for i in range(0, len(texts), 64)]
    return _unit(np.concatenate(out))


def _percentile(values: np.ndarray, q: float) -> float | None:
    """Nearest-rank percentile: always one of the observed values."""
    if values.size == 0:
        return None
    ordered = np.sort(values)
    rank = max(1, math.ceil(q / 100 * ordered.size))
    return float(ordered[rank - 1])


def _per_day(rows: list[Record], *, since: datetime | None, now: datetime | None) -> tuple[DayCount, ...]:
    if not rows:
        return ()
    totals: Counter = Counter()
    refused: Counter = Counter()
    for r in rows:
        day = r.created_at.astimezone().date()
        totals[day] += 1
        refused[day] += int(r.refused)
    first = since.astimezone().date() if since else min(totals)
    last = max(max(totals), (now or datetime.now().astimezone()).astimezone().date()) if since else max(totals)
    days = []
    d = first
    while d <= last:  # days without questions are shown as zero, not skipped
        days.append(DayCount(d, totals[d], refused[d]))
        d += timedelta(days=1)
    return tuple(days)


def _topics(rows: list[Record], vectors: np.ndarray, index) -> tuple[Topic, ...]:
    k = choose_k(len(rows))
    labels, centres = kmeans(vectors, k)
    parsed = [question_terms(r.question) for r in rows]
    term_sets = [set(terms) for terms, _ in parsed]
    surface: dict[str, Counter] = defaultdict(Counter)
    for _, s in parsed:
        for stem, word in s.items():
            surface[stem][word] += 1
    topics = []
    for j in range(centres.shape[0]):
        members = np.flatnonzero(labels == j)
        terms = distinctive_terms([term_sets[i] for i in members], term_sets)
        shown = tuple(surface[t].most_common(1)[0][0] if surface.get(t) else t for t in terms)
        # Examples: the questions nearest the centre, no two the same after normalisation.
        order = members[np.argsort(-(vectors[members] @ centres[j]), kind="stable")]
        distinct: dict[str, str] = {}
        for i in order:
            distinct.setdefault(_gap_key(rows[i].question), rows[i].question)
        examples = tuple(distinct.values())[:EXAMPLES]
        measure_id, measure_label = _nearest_measure(centres[j], index)
        label = " · ".join(shown) or (measure_label or examples[0])
        topics.append(Topic(label=label, terms=shown, count=len(members), examples=examples,
                            measure_id=measure_id, measure_label=measure_label,
                            refused=sum(1 for i in members if rows[i].refused),
                            record_ids=tuple(rows[i].id for i in members)))
    topics.sort(key=lambda t: (-t.count, t.label))
    return tuple(topics)


def _nearest_measure(centre: np.ndarray, index) -> tuple[str | None, str | None]:
    if index is None or getattr(index, "vectors", None) is None or len(index.chunks) == 0:
        return None, None
    vecs = np.asarray(index.vectors, dtype=np.float32)
    if vecs.shape[1] != centre.shape[0]:
        return None, None
    best = int(np.argmax(vecs @ centre))
    measure = index.measures.get(index.chunks[best].measure_id)
    if measure is None:
        return None, None
    return measure.measure_id, measure.label or measure.title


def _gaps(rows: list[Record], vectors: np.ndarray | None, limit: int) -> tuple[Gap, ...]:
    """Refused policy questions, grouped: identical after normalisation, or (with vectors) nearly so."""
    groups: list[dict] = []
    by_key: dict[str, dict] = {}
    for i, r in enumerate(rows):
        if not r.refused or r.reason in NOT_GAPS or r.mode == HEALTH_CHECK:
            continue
        key = _gap_key(r.question)
        group = by_key.get(key)
        if group is None and vectors is not None:
            for g in groups:
                if float(vectors[i] @ vectors[g["rep"]]) >= GAP_SIMILARITY:
                    group = g
                    break
        if group is None:
            group = {"rep": i, "members": []}
            groups.append(group)
        by_key.setdefault(key, group)
        group["members"].append(r)
    gaps = []
    for g in groups:
        members: list[Record] = g["members"]
        texts = Counter(m.question for m in members)
        gaps.append(Gap(
            question=texts.most_common(1)[0][0],
            count=len(members),
            examples=tuple(t for t, _ in texts.most_common(EXAMPLES)),
            reasons=tuple(r for r, _ in Counter(m.reason for m in members if m.reason).most_common()),
            languages=tuple(sorted({m.language for m in members if m.language})),
            first_asked=min(m.created_at for m in members),
            last_asked=max(m.created_at for m in members),
        ))
    gaps.sort(key=lambda g: (-g.count, -g.last_asked.timestamp(), g.question))
    return tuple(gaps[:limit])


def _gap_key(question: str) -> str:
    return re.sub(r"[\W_]+", " ", normalize_for_index(question)).strip()


# ---------------------------------------------------------------- output
GAP_COLUMNS = ("rank", "times_asked", "question", "similar_questions", "refusal_reasons", "languages",
               "first_asked", "last_asked")


def gaps_csv(insights: Insights) -> str:
    """The policy gaps as CSV (UTF-8; open with a BOM-aware spreadsheet for Chinese text)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(GAP_COLUMNS)
    for n, g in enumerate(insights.gaps, 1):
        writer.writerow([n, g.count, _csv_safe(g.question),
                         " | ".join(_csv_safe(e) for e in g.examples if e != g.question),
                         " ".join(g.reasons), " ".join(g.languages),
                         g.first_asked.isoformat(timespec="seconds"), g.last_asked.isoformat(timespec="seconds")])
    return buf.getvalue()


def _csv_safe(text: str) -> str:
    """Questions are typed by the public: keep a spreadsheet from reading one as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v / 1000:.1f} s"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def render_text(ins: Insights) -> str:
    """The summary `jxa insights` prints."""
    period = f"since {ins.since:%Y-%m-%d}" if ins.since else "all records"
    lines = [
        f"Consultations ({period}): {ins.total}",
        f"  answered {ins.answered} ({_pct(ins.answered_ratio)}), refused {ins.refused}",
        f"  feedback: {ins.feedback_up} up, {ins.feedback_down} down (positive {_pct(ins.feedback_ratio)})",
        f"  latency: p50 {_ms(ins.p50_ms)}, p95 {_ms(ins.p95_ms)}",
    ]
    if ins.languages:
        lines.append("  languages: " + ", ".join(f"{k} {v}" for k, v in ins.languages.items()))
    if ins.channels:
        lines.append("  channels: " + ", ".join(f"{k} {v}" for k, v in ins.channels.items()))
    active = [d for d in ins.per_day if d.total]
    if active:
        lines.append("\nQuestions per day with any (refused in brackets):")
        top = max(d.total for d in active)
        for d in active[-14:]:
            lines.append(f"  {d.day:%m-%d} {'#' * round(20 * d.total / top):<20} {d.total} ({d.refused})")
    if ins.topics:
        lines.append("\nTopics:")
        for t in ins.topics:
            near = f"  [nearest: {t.measure_label}]" if t.measure_label else ""
            lines.append(f"  {t.count:>4}  {t.label}{near}")
            for e in t.examples:
                lines.append(f"          - {e}")
    lines.append("\nPolicy gaps (questions the policies could not answer):")
    if not ins.gaps:
        lines.append("  none")
    for n, g in enumerate(ins.gaps, 1):
        lines.append(f"  {n:>2}. ({g.count}x) {g.question}  [{', '.join(g.reasons) or '-'}]")
    lines.append(f"\nPolicy health checks: {ins.health_checks}; profiles that found nothing that applies:")
    if not ins.health_gaps:
        lines.append("  none")
    for n, g in enumerate(ins.health_gaps, 1):
        lines.append(f"  {n:>2}. ({g.count}x, may apply {g.may_apply}) {g.profile}")
    if ins.comments:
        lines.append("\nRecent comments:")
        for c in ins.comments:
            lines.append(f"  {'+' if c.feedback > 0 else '-' if c.feedback < 0 else ' '} {c.comment}  ({c.question})")
    return "\n".join(lines)
