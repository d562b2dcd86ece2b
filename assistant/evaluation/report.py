"""Reports: Markdown for reading in a repository, a self-contained HTML page with charts, JSON for machines."""

from __future__ import annotations

import html
import json
from pathlib import Path

HEADLINE = [
    # (key, label, higher is better, format)
    ("recall_at_5", "Retrieval Recall@5", True, "pct"),
    ("lead_measure_right", "Evidence [1] is a gold measure", True, "pct"),
    ("right_measure_cited", "Right measure cited", True, "pct"),
    ("citation_correctness", "Citation correctness", True, "pct"),
    ("citation_validity", "Citation validity", True, "pct"),
    ("citation_recall", "Citation recall (ALCE)", True, "pct"),
    ("citation_precision", "Citation precision (ALCE)", True, "pct"),
    ("unsupported_answer_share", "Answers with an unsupported sentence", False, "pct"),
    ("empty_sentences", "Empty sentences shown", False, "count"),
    ("empty_dropped", "Empty sentences dropped by verification", False, "count"),
    ("key_fact_recall", "Key-fact recall", True, "pct"),
    ("negative_rejection", "Negative rejection", True, "pct"),
    ("false_refusal", "False refusal", False, "pct"),
    ("injection_resisted", "Injections resisted", True, "pct"),
    ("followup_right", "Follow-ups right", True, "pct"),
    ("unlawful_refused", "Unlawful requests refused", True, "pct"),
    ("unlawful_fixed_refusal", "... with the fixed unlawful refusal", True, "pct"),
    ("policy_refused_off_topic", "Policy questions refused as off-topic", False, "pct"),
    ("language_match", "Answer-language match", True, "pct"),
    ("expiry_flagged", "Expiry flagged", True, "pct"),
    ("near_verbatim_share", "Near-verbatim copies", False, "pct"),
    ("extractive_share", "Extractive fallbacks", False, "pct"),
    ("first_token_p50_ms", "Time to first token p50", False, "ms"),
    ("total_p50_ms", "Full answer p50", False, "ms"),
    ("total_p95_ms", "Full answer p95", False, "ms"),
]


def fmt(value, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "count":
        return f"{value:d}"
    return f"{value:.2f}" if kind == "pct" else f"{value / 1000:.1f} s"


def check_thresholds(summary: dict, thresholds: dict) -> list[str]:
    """Failures as readable lines; `thresholds` maps metric -> {"min": x} or {"max": x}."""
    failures = []
    for key, rule in thresholds.items():
        value = summary.get(key)
        if value is None:
            failures.append(f"{key}: not measured")
        elif "min" in rule and value < rule["min"]:
            failures.append(f"{key} = {value:.3f} is below its threshold {rule['min']}")
        elif "max" in rule and value > rule["max"]:
            failures.append(f"{key} = {value:.3f} is above its threshold {rule['max']}")
    return failures


def _delta(old, new, kind: str) -> str:
    if old is None or new is None:
        return "–"
    if kind == "count":
        return f"{new - old:+d}"
    return f"{new - old:+.2f}" if kind == "pct" else f"{(new - old) / 1000:+.1f} s"


def _header(report: dict, compare: dict | None) -> list[str]:
    splits = ", ".join(f"{name} {len([r for r in report['product']['rows'] if r.get('split') == name])}"
                       for name in report.get("splits", {}))
    selection = f"; selection: {report['selection']}" if report.get("selection") else ""
    return [f"# Evaluation report — {report['created']}", "",
            f"Set: `{report['set']}` ({report['items']} items{' , quick subset' if report['quick'] else ''}"
            f"{'; ' + splits if splits else ''}{selection}); "
            f"model `{report['model']}`; prompts `{report['prompts'][:12]}`; "
            f"{report['product']['summary']['generated_uncached']} answers generated, the rest from the answer cache."]


def _headline(report: dict, compare: dict | None) -> list[str]:
    prod, base = report["product"]["summary"], report["baseline"]["summary"]
    lines = ["## Headline: product vs plain baseline (all items of this run)", "",
             "| Metric | Product | Baseline |" + (" Δ vs earlier |" if compare else ""),
             "|---|---:|---:|" + ("---:|" if compare else "")]
    for key, label, _, kind in HEADLINE:
        row = f"| {label} | {fmt(prod.get(key), kind)} | {fmt(base.get(key), kind)} |"
        if compare:
            row += f" {_delta(compare.get('product', {}).get('summary', {}).get(key), prod.get(key), kind)} |"
        lines.append(row)
    return lines


def _side_by_side(title: str, views: dict, note: str = "") -> list[str]:
    """Headline metrics of the product, one column per view (split or suite)."""
    if not views:
        return []
    names = list(views)
    lines = [f"## {title}", ""] + ([note, ""] if note else [])
    lines += ["| Metric | " + " | ".join(f"{n} (n={views[n]['summary']['items']})" for n in names) + " |",
              "|---|" + "---:|" * len(names)]
    for key, label, _, kind in HEADLINE:
        lines.append(f"| {label} | " + " | ".join(fmt(views[n]["summary"].get(key), kind) for n in names) + " |")
    return lines


def _splits(report: dict, compare: dict | None) -> list[str]:
    return _side_by_side("Product by split: calibration vs test", report.get("splits", {}),
                         "Thresholds and margins are chosen on the calibration split; the test split is never "
                         "tuned on, and the CI gate checks it.")


def _suites(report: dict, compare: dict | None) -> list[str]:
    suites = report.get("suites", {})
    return _side_by_side("Product by suite", suites) if len(suites) > 1 else []


def _through_server(report: dict, compare: dict | None) -> list[str]:
    """`jxa eval --llm-server`: the same items through the shared model server, beside the in-process run."""
    server = report.get("through_server")
    if not server:
        return []
    views = {"in-process": report["product"], "model server": server}
    lines = _side_by_side("In-process model vs the shared model server", views,
                          f"The same items, answered a second time through the model server ({server['note']}). "
                          "Every percentage should be within 0.02 (evaluation/scaleout.py: QUALITY_TOLERANCE).")
    changed = [(a, b) for a, b in zip(report["product"]["rows"], server["rows"], strict=True)
               if (a["mode"], a["cited"]) != (b["mode"], b["cited"])]
    if changed:
        lines += ["", f"Items answered differently ({len(changed)}):", "", "| Item | in-process | model server |",
                  "|---|---|---|"]
        lines += [f"| {a['id']} | {a['mode']} {', '.join(a['cited'])} | {b['mode']} {', '.join(b['cited'])} |"
                  for a, b in changed]
    return lines


def _retrieval(report: dict, compare: dict | None) -> list[str]:
    lines = ["## Retrieval (answerable items)", "", "| Mode | Part | n | R@1 | R@5 | MRR@10 | nDCG@10 |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for mode, groups in report["retrieval"].items():
        for part in ("all", "same-language", "cross-lingual"):
            g = groups.get(part)
            if g:
                lines.append(f"| {mode} | {part} | {g['n']} | {g['r1']:.2f} | {g['r5']:.2f} | {g['mrr10']:.2f} | {g['ndcg10']:.2f} |")
    return lines


def _by_split(key: str, title: str):
    """A breakdown with the calibration and test figures side by side (product)."""
    def section(report: dict, compare: dict | None) -> list[str]:
        splits = report.get("splits", {})
        groups = list(dict.fromkeys(g for v in splits.values() for g in v["by"].get(key, {})))
        if not groups:
            return []
        names = list(splits)
        pair = " / ".join(names)
        lines = [f"## {title} (product, {pair})", "",
                 "| Group | n | R@5 | Right cited | Refused | Key facts | Follow-ups right |", "|---|" + "---:|" * 6]
        for g in sorted(groups):
            vs = [splits[n]["by"].get(key, {}).get(g) or {} for n in names]

            def col(metric, vs=vs):
                return " / ".join(fmt(v.get(metric), "pct") for v in vs)
            lines.append(f"| {g} | {' / '.join(str(v.get('n', 0)) for v in vs)} | {col('recall_at_5')} | "
                         f"{col('right_measure_cited')} | {col('refused')} | {col('key_fact_recall')} | "
                         f"{col('followup_right')} |")
        return lines
    return section


def _by_pipeline(key: str, title: str):
    """A breakdown of the whole run, product vs baseline."""
    def section(report: dict, compare: dict | None) -> list[str]:
        lines = [f"## {title}", "", "| Group | n | R@5 P/B | Right cited P/B | Refused P/B | Key facts P/B |",
                 "|---|---:|---:|---:|---:|---:|"]
        pb, bb = report["product"]["by"][key], report["baseline"]["by"].get(key, {})
        for g, v in pb.items():
            b = bb.get(g, {})
            lines.append(f"| {g} | {v['n']} | {fmt(v['recall_at_5'], 'pct')} / {fmt(b.get('recall_at_5'), 'pct')} | "
                         f"{fmt(v['right_measure_cited'], 'pct')} / {fmt(b.get('right_measure_cited'), 'pct')} | "
                         f"{fmt(v['refused'], 'pct')} / {fmt(b.get('refused'), 'pct')} | "
                         f"{fmt(v['key_fact_recall'], 'pct')} / {fmt(b.get('key_fact_recall'), 'pct')} |")
        return lines
    return section


def _text(value: str, limit: int = 160) -> str:
    """A question or answer as one table-safe line of plain text."""
    value = " ".join(str(value).split())
    value = value if len(value) <= limit else value[:limit - 1] + "…"
    return value.replace("|", "\\|")


def _unlawful(report: dict, compare: dict | None) -> list[str]:
    rows = [r for r in report["product"]["rows"] if r["type"] == "unlawful"]
    if not rows:
        return []
    lines = ["## Unlawful or manipulative requests (product)", "",
             "Expected: refused, with the fixed reason `unlawful`.", "",
             "| id | split | outcome | question |", "|---|---|---|---|"]
    for r in rows:
        outcome = f"refused ({r.get('refusal_reason') or '?'})" if r["refused"] else f"answered ({r.get('mode')})"
        lines.append(f"| `{r['id']}` | {r.get('split', '?')} | {outcome} | {_text(r.get('question', ''))} |")
    return lines


def _off_topic_refusals(report: dict, compare: dict | None) -> list[str]:
    rows = [r for r in report["product"]["rows"] if r["refused"] and r.get("refusal_reason") == "off_topic"]
    lines = ["## Every refusal as off-topic (product)", "",
             "Each question the product refused as unrelated to enterprise policy; a policy question here is a "
             "false refusal of the worst kind.", ""]
    if not rows:
        return lines + ["- none"]
    lines += ["| id | type | split | policy question? | question |", "|---|---|---|---|---|"]
    for r in rows:
        policy = "YES" if r["answerable"] else "no"
        lines.append(f"| `{r['id']}` | {r['type']} | {r.get('split', '?')} | {policy} | {_text(r.get('question', ''))} |")
    return lines


def _gate(report: dict, compare: dict | None) -> list[str]:
    if report.get("gate_failures") is None:
        return []
    lines = ["## CI gate", "", f"Checked on: {report.get('gate_on', 'test split')}.", ""]
    return lines + ([f"- FAIL: {f}" for f in report["gate_failures"]] or ["- all thresholds met"])


def _method(report: dict, compare: dict | None) -> list[str]:
    return ["## Method", "", report["method"]]


def _misses(report: dict, compare: dict | None) -> list[str]:
    misses = [r for r in report["product"]["rows"] if r["answerable"] and not r.get("right_cited")][:60]
    if not misses:
        return []
    lines = ["## Answerable items where the product did not cite a gold measure", ""]
    return lines + [f"- `{r['id']}` ({r['type']}, {r['language']}, {r.get('split', '?')}): "
                    f"{'refused (' + str(r.get('refusal_reason')) + ')' if r['refused'] else 'cited ' + ', '.join(r['cited'])}"
                    for r in misses]


def _faithfulness(report: dict, compare: dict | None) -> list[str]:
    """The judge's own accuracy on the hand-written references, by split, then every product answer with
    a sentence its cited measures do not support, and why."""
    lines = ["## Faithfulness: the judge and the answers it flags", ""]
    refs = report.get("judge_references") or {}
    if refs:
        lines += ["| References split | Faithful claims | Accepted | Unsupported claims | Caught |", "|---|---:|---:|---:|---:|"]
        for split, r in refs.items():
            lines.append(f"| {split} | {r['supported']} | {fmt(r['accepted'], 'pct')} | {r['unsupported']} | "
                         f"{fmt(r['caught'], 'pct')} |")
        lines += ["", "Bars chosen on the calibration split only (assistant/evaluation/judge.py).", ""]
    rows = [r for r in report["product"]["rows"] if r.get("unsupported_sentences")]
    answered = [r for r in report["product"]["rows"] if not r["refused"]]
    lines.append(f"Product answers with an unsupported sentence: {len(rows)} of {len(answered)}.")
    if rows:
        lines.append("")
    for r in rows:
        for s in r["unsupported_sentences"]:
            lines.append(f"- `{r['id']}` ({r['type']}, {r['language']}, {r.get('mode', '')}): "
                         f"{s['sentence']!r} cites {', '.join(s['cited']) or 'nothing'} — {s['reason']}")
    empty = [(r, s) for r in report["product"]["rows"] for s in r.get("empty_sentences", [])]
    lines += ["", f"Empty sentences shown (no fact of the cited measure beyond the question's words): {len(empty)}."]
    lines += [f"- `{r['id']}` ({r['type']}, {r['language']}): {s['sentence']!r} cites {', '.join(s['cited'])}"
              for r, s in empty]
    return lines


# The report, top to bottom: (name, section). Each section reads the report dict and returns Markdown
# lines ([] to leave itself out); a new section is one function and one entry here.
SECTIONS = [
    ("header", _header),
    ("headline", _headline),
    ("splits", _splits),
    ("suites", _suites),
    ("through the model server", _through_server),
    ("retrieval", _retrieval),
    ("by type", _by_split("type", "By question type")),
    ("follow-ups", _by_split("followup_kind", "Follow-ups by kind")),
    ("by language", _by_pipeline("language", "By question language (all items)")),
    ("by overlap", _by_pipeline("overlap", "By lexical overlap with the gold text (all items)")),
    ("unlawful", _unlawful),
    ("off-topic refusals", _off_topic_refusals),
    ("gate", _gate),
    ("faithfulness", _faithfulness),
    ("method", _method),
    ("misses", _misses),
]


def markdown(report: dict, compare: dict | None = None) -> str:
    blocks = [lines for _, section in SECTIONS if (lines := section(report, compare))]
    return "\n\n".join("\n".join(b) for b in blocks) + "\n"


def _bars(title: str, rows: list[tuple[str, float | None, float | None]]) -> str:
    """A horizontal bar chart (product vs baseline) as inline SVG: no scripts, no network."""
    h = 26 * len(rows) + 40
    out = [f'<figure><figcaption>{html.escape(title)}</figcaption><svg role="img" width="720" height="{h}" '
           f'viewBox="0 0 720 {h}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="12">']
    for i, (label, p, b) in enumerate(rows):
        y = 20 + 26 * i
        out.append(f'<text x="0" y="{y + 12}">{html.escape(label)}</text>')
        for j, (v, color) in enumerate(((p, "#1d6fb8"), (b, "#b0b7c3"))):
            w = 0 if v is None else max(1, int(420 * v))
            out.append(f'<rect x="230" y="{y + 11 * j}" width="{w}" height="10" fill="{color}"/>')
            out.append(f'<text x="{236 + w}" y="{y + 9 + 11 * j}">{"–" if v is None else f"{v:.2f}"}</text>')
    out.append(f'<rect x="230" y="{h - 14}" width="10" height="10" fill="#1d6fb8"/><text x="244" y="{h - 5}">product</text>'
               f'<rect x="320" y="{h - 14}" width="10" height="10" fill="#b0b7c3"/><text x="334" y="{h - 5}">baseline</text>')
    return "".join(out) + "</svg></figure>"


def html_page(report: dict, md: str) -> str:
    prod, base = report["product"]["summary"], report["baseline"]["summary"]
    charts = [_bars("Headline metrics (higher is better unless marked ↓)",
                    [(label + ("" if up else " ↓"), prod.get(k), base.get(k)) for k, label, up, kind in HEADLINE
                     if kind == "pct"])]
    by_type = report["product"]["by"]["type"]
    charts.append(_bars("Right measure cited, by question type",
                        [(g, v["right_measure_cited"], report["baseline"]["by"]["type"].get(g, {}).get("right_measure_cited"))
                         for g, v in by_type.items() if v["right_measure_cited"] is not None]))
    charts.append(_bars("Refused, by question type (answerable types should be low, the rest high)",
                        [(g, v["refused"], report["baseline"]["by"]["type"].get(g, {}).get("refused"))
                         for g, v in by_type.items()]))
    body = html.escape(md)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Evaluation report {html.escape(report['created'])}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#1b1f24}}
figure{{margin:1.5em 0}}figcaption{{font-weight:bold;margin-bottom:.4em}}pre{{white-space:pre-wrap;background:#f5f7fa;padding:1em;font-size:13px}}</style>
</head><body><h1>Evaluation report</h1><p>{html.escape(report['created'])} — {report['items']} items — model {html.escape(report['model'])}</p>
{''.join(charts)}<h2>Full report</h2><pre>{body}</pre></body></html>"""


def write(report: dict, out_dir: Path, compare: dict | None = None) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = report["created"].replace(":", "").replace("-", "")
    md = markdown(report, compare)
    paths = {"md": out_dir / f"report-{stem}.md", "html": out_dir / f"report-{stem}.html",
             "json": out_dir / f"report-{stem}.json"}
    paths["md"].write_text(md, encoding="utf-8")
    paths["html"].write_text(html_page(report, md), encoding="utf-8")
    paths["json"].write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return paths
