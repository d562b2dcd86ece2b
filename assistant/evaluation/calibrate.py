"""Sweep the evidence gate's thresholds over the calibration split, from retrieval signals alone.

Only calibration items are read, whatever set is passed: the test split is never tuned on.

Prints, for each grid point, negative rejection and false refusal, and the point chosen: the highest
rejection among those whose false refusal stays within FALSE_REFUSAL_BUDGET (ties: lower false
refusal). The budget leaves room for the refusals made after generation, which share the product's
10% false-refusal target. Copy the chosen values into answering/gate.py."""

from __future__ import annotations

import itertools

from ..answering import gate
from ..answering.language import standalone_query
from .dataset import REFUSED_BY_INTENT, calibration_items

FALSE_REFUSAL_BUDGET = 0.025


def sweep(items, assistant) -> int:
    retriever = assistant.retriever
    items = calibration_items(items)
    cases = []
    for item in items:
        if item.type in REFUSED_BY_INTENT:
            continue  # refused for what they ask, not by thresholds
        query = (standalone_query(item.question, [tuple(t) for t in item.history], retriever.places)
                 if item.history else item.question)
        plan = retriever.plan(query)
        hits = retriever.search(query, k=assistant.settings.top_k)
        cases.append((item, query, plan, hits))
    grid = itertools.product([0.79, 0.80, 0.81, 0.815, 0.82, 0.825, 0.83, 0.835, 0.84, 0.85],
                             [0.0, 0.82, 0.83, 0.835, 0.84, 0.845, 0.85, 0.86], [0.3, 0.4, 0.5, 0.6])
    results = []
    for md, mda, mc in grid:
        if mda and mda < md:
            continue
        neg, pos = [], []
        for item, _query, plan, hits in cases:
            d = gate.decide(item.question, plan, hits, assistant.retriever.known_words, min_dense=md, min_dense_alone=max(md, mda),
                            min_coverage=mc)
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
