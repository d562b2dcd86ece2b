"""The in-process vs model-server quality comparison (`jxa eval --llm-server`): the logic, with fake summaries.

The real twin is the run itself through llama_cpp.server (docs/decisions.md, Scale-out)."""

from assistant.evaluation.report import HEADLINE
from assistant.evaluation.scaleout import QUALITY_TOLERANCE, compare_quality, format_quality

PCT = [(key, label) for key, label, _, kind in HEADLINE if kind == "pct"]


def test_every_percent_headline_metric_is_compared_and_latency_is_not():
    rows = compare_quality({k: 0.5 for k, _ in PCT}, {k: 0.5 for k, _ in PCT})
    assert [r.label for r in rows] == [label for _, label in PCT]
    assert all(r.within for r in rows)
    assert not any(kind != "pct" and label in {r.label for r in rows} for _, label, _, kind in HEADLINE)


def test_a_difference_beyond_the_tolerance_is_flagged_either_way():
    (k1, l1), (k2, l2), (k3, l3) = PCT[:3]
    local = {k1: 0.80, k2: 0.80, k3: 0.80}
    server = {k1: 0.80 + QUALITY_TOLERANCE, k2: 0.77, k3: 0.83}
    rows = {r.label: r for r in compare_quality(local, server)}
    assert rows[l1].within is True  # exactly on the bar passes
    assert rows[l2].within is False and abs(rows[l2].diff + 0.03) < 1e-9
    assert rows[l3].within is False


def test_a_metric_missing_on_one_side_is_not_judged():
    (k1, l1), (k2, _) = PCT[:2]
    rows = {r.label: r for r in compare_quality({k1: 0.9, k2: 0.5}, {k2: 0.5})}
    assert rows[l1].diff is None and rows[l1].within is None
    text = format_quality(list(rows.values()), "reply cache on")
    assert "1/1 metrics within" in text and " NO" not in text


def test_the_printed_table_shows_both_runs_and_the_verdict():
    (k1, l1), = PCT[:1]
    text = format_quality(compare_quality({k1: 0.9}, {k1: 0.85}), "from the committed answer cache")
    line = next(x for x in text.splitlines() if x.startswith(l1))
    assert "0.900" in line and "0.850" in line and "-0.050" in line and line.endswith("NO")
    assert "from the committed answer cache" in text and "0/1 metrics within" in text


def test_the_report_shows_the_server_run_beside_the_in_process_run_and_lists_items_answered_differently():
    from assistant.evaluation.report import SECTIONS

    section = dict(SECTIONS)["through the model server"]
    def row(i, mode, cited):
        return {"id": i, "mode": mode, "cited": cited}

    (k1, l1), = PCT[:1]
    report = {"product": {"summary": {"items": 2, k1: 0.9}, "rows": [row("q1", "generated", ["a#1"]),
                                                                     row("q2", "quote", ["b#2"])]},
              "through_server": {"note": "reply cache off", "summary": {"items": 2, k1: 0.85},
                                 "rows": [row("q1", "generated", ["a#1"]), row("q2", "generated", ["b#2"])]}}
    text = "\n".join(section(report, None))
    assert "In-process model vs the shared model server" in text
    line = next(x for x in text.splitlines() if x.startswith(f"| {l1} |") and "0.85" in x)
    assert "0.90" in line
    assert "Items answered differently (1)" in text and "| q2 | quote b#2 | generated b#2 |" in text
    assert "| q1 |" not in text
    assert section({**report, "through_server": None}, None) == []
