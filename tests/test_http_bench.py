"""The HTTP benchmark's own arithmetic: which questions it asks and what it reports of them."""

import json

import pytest

from assistant.evaluation.http_bench import Asked, HttpBench, bench_items, format_summary


def _item(i, language, split="test", suite=None):
    row = {"id": f"x{i:03d}", "set_version": 1, "type": "single", "language": language, "question": f"q{i}",
           "history": [], "answerable": True, "gold": [], "key_facts": [], "expect_expired": False,
           "overlap": "low", "quick": False, "split": split}
    if suite:
        row["suite"] = suite
    return row


def test_questions_alternate_languages_keep_the_rest_and_stay_in_the_main_suite(tmp_path):
    rows = [_item(1, "en"), _item(2, "en"), _item(3, "en"), _item(4, "zh"), _item(5, "zh-hant", "calibration"),
            _item(6, "zh", suite="unseen-docs")]
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert [i.id for i in bench_items(path, None, None)] == ["x001", "x004", "x002", "x005", "x003"]
    assert [i.id for i in bench_items(path, None, "test")] == ["x001", "x004", "x002", "x003"]
    assert [i.id for i in bench_items(path, 2, None)] == ["x001", "x004"]


def test_the_summary_counts_generated_answers_among_answered_ones_and_names_every_difference():
    bench = HttpBench([
        Asked("a", 2.0, 1.0, 2.5, "generated", True),
        Asked("b", 4.0, 3.0, 4.5, "extractive", True),
        Asked("c", 1.0, 0.5, 1.0, "refusal", True),
        Asked("d", 6.0, None, 6.0, "generated", False, "one", "two"),
    ], [1.0, 2.0], [3.0, 5.0])
    s = bench.summary()
    assert s["questions"] == 4 and s["answered"] == 3
    assert s["generated_share"] == round(2 / 3, 3)
    assert s["api_full_s"]["p50"] == 3.0
    assert s["sse_first_text_s"]["p50"] == 1.0  # the stream with no text is left out
    assert s["streamed_differs"] == ["d"]
    assert s["baseline"]["full_s"]["p50"] == 4.0
    text = format_summary(s)
    assert "differs from the returned one for 1: d" in text and "baseline full answer" in text
    assert "identical for every question" in format_summary(HttpBench([Asked("a", 1, 1, 1, "generated", True)]).summary())


@pytest.mark.model
@pytest.mark.slow
def test_a_real_server_answers_on_both_channels_with_the_same_text():
    from pathlib import Path

    from assistant.config import Settings
    from assistant.evaluation.http_bench import run

    items = bench_items(Path("eval/questions.jsonl"), 2, "test")
    result = run(Settings(), items, baseline=False)
    assert [a.id for a in result.asked] == [i.id for i in items]
    for a in result.asked:
        assert a.same, (a.api_text, a.sse_text)
        assert a.api_text and a.api_s > 0 and a.sse_s > 0
        assert a.mode in ("generated", "extractive", "refusal")
        assert a.sse_first_s is not None and a.sse_first_s <= a.sse_s
