"""Sweep the evidence gate's thresholds over the calibration split, from retrieval signals alone.

Only calibration items are read, whatever set is passed: the test split is never tuned on.

Prints, for each grid point, negative rejection and false refusal, and the point chosen: the highest
rejection among those whose false refusal stays within FALSE_REFUSAL_BUDGET (ties: lower false
refusal). The budget leaves room for the refusals made after generation, which share the product's
10% false-refusal target. Copy the chosen values into answering/gate.py."""

from __future__ import annotations

import itertools
import logging
import sys

from ..answering import gate
from ..answering.language import continues_answer, retrieval_query, standalone_query
from .dataset import REFUSED_BY_INTENT, calibration_items

FALSE_REFUSAL_BUDGET = 0.025


def sweep(items, assistant) -> int:
    retriever = assistant.retriever
    items = calibration_items(items)
    cases = []
    for item in items:
        if item.type in REFUSED_BY_INTENT:
            continue  # refused for what they ask, not by thresholds
        history = [tuple(t) for t in item.history]
        query = standalone_query(item.question, history, retriever.places) if history else item.question
        plan = retriever.plan(query)
        hits = retriever.search(retrieval_query(item.question, query, history, retriever.places),
                                k=assistant.settings.top_k)
        cases.append((item, continues_answer(item.question, query, history), plan, hits))
    grid = itertools.product([0.79, 0.80, 0.81, 0.815, 0.82, 0.825, 0.83, 0.835, 0.84, 0.85],
                             [0.0, 0.82, 0.83, 0.835, 0.84, 0.845, 0.85, 0.86], [0.3, 0.4, 0.5, 0.6])
    results = []
    for md, mda, mc in grid:
        if mda and mda < md:
            continue
        neg, pos = [], []
        for item, continues, plan, hits in cases:
            d = gate.decide(item.question, plan, hits, assistant.retriever.known_words, min_dense=md,
                            min_dense_alone=max(md, mda), min_coverage=mc, continues=continues)
            (neg if item.negative else pos).append(not d.covered)
        nr = sum(neg) / max(1, len(neg))
        fr = sum(pos) / max(1, len(pos))
        results.append((md, max(md, mda), mc, nr, fr))
    print(f"{'min_dense':>9} {'alone':>6} {'cover':>6} {'neg.rej':>8} {'false.ref':>9}")
    ok = [r for r in results if r[4] <= FALSE_REFUSAL_BUDGET] or results
    best = min(ok, key=lambda r: (-r[3], r[4]))
    for r in sorted(ok, key=lambda r: (-r[3], r[4]))[:20]:
        print(f"{r[0]:>9} {r[1]:>6} {r[2]:>6} {r[3]:>8.3f} {r[4]:>9.3f}")
    print(f"chosen: MIN_DENSE={best[0]} MIN_DENSE_ALONE={best[1]} MIN_COVERAGE={best[2]} "
          f"(negative rejection {best[3]:.3f}, false refusal {best[4]:.3f}; {len(cases)} calibration items)")
    return 0


#: share of the answerable calibration items reaching the check that it may refuse while its measure was
#: right: none, since false refusal already sits near its 10% target without the check (docs/decisions.md)
CHECK_LOSS_BUDGET = 0.0


class _Margins(logging.Handler):
    """Collects the check's margins as the product logs them (value, measure id)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("relevance lift") and isinstance(record.args, tuple):
            self.seen.append((float(record.args[0]), str(record.args[1])))


def check_sweep(items, assistant) -> int:
    """Sweep the check before a quote (`relevance_margin`) over the calibration split, by answering.

    Each calibration item is asked; where the check runs, its margin (the question's likelihood under
    the measure against with none shown) and the measure
    it was asked about are kept. A margin below the threshold refuses: right for an unanswerable item,
    a loss for an answerable one whose measure was right, and no loss when the measure was wrong
    anyway. The chosen threshold is the highest whose losses stay within CHECK_LOSS_BUDGET of the
    answerable items the check saw."""
    items = [i for i in calibration_items(items) if i.type not in REFUSED_BY_INTENT]
    handler = _Margins()
    logger = logging.getLogger("assistant.answering.relevance")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    cases = []
    try:
        for n, item in enumerate(items, 1):
            handler.seen.clear()
            assistant.ask(item.question, [tuple(t) for t in item.history])
            if handler.seen:
                value, measure = handler.seen[-1]
                cases.append((item, value, measure))
                print(f"{item.id:>6} {'neg' if item.negative else 'pos':>4} "
                      f"{'gold' if measure in item.gold else '-':>5} {value:8.3f}  {measure}", flush=True)
            print(f"check: {n}/{len(items)} asked", file=sys.stderr, flush=True)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    neg = [v for item, v, _ in cases if item.negative]
    right = [v for item, v, m in cases if not item.negative and m in item.gold]
    wrong = [v for item, v, m in cases if not item.negative and m not in item.gold]
    print(f"{len(cases)} of {len(items)} calibration items reached the check: {len(neg)} unanswerable, "
          f"{len(right)} answerable with the right measure, {len(wrong)} with a wrong one")
    if not neg or not right:
        print("check: too few items to choose a threshold")
        return 1
    candidates = sorted({round(v, 2) for v in neg + right + wrong} | {0.0})
    rows = []
    for t in candidates:
        rows.append((t, sum(v < t for v in neg) / len(neg), sum(v < t for v in right) / len(right),
                     sum(v < t for v in wrong) / max(1, len(wrong))))
    print(f"{'margin':>7} {'neg.rej':>8} {'lost':>6} {'wrong.ref':>9}")
    for r in rows:
        print(f"{r[0]:>7.2f} {r[1]:>8.3f} {r[2]:>6.3f} {r[3]:>9.3f}")
    ok = [r for r in rows if r[2] <= CHECK_LOSS_BUDGET]
    best = max(ok, key=lambda r: (r[1], -r[2], r[0])) if ok else rows[0]
    print(f"chosen: JXA_RELEVANCE_MARGIN={best[0]:.2f} (check's negative rejection {best[1]:.3f}, right measures "
          f"refused {best[2]:.3f}, wrong measures refused {best[3]:.3f}; {len(cases)} calibration items)")
    return 0
