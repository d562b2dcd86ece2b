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
    ("key_fact_recall", "Key-fact recall", True, "pct"),
    ("negative_rejection", "Negative rejection", True, "pct"),
    ("false_refusal", "False refusal", False, "pct"),
    ("injection_resisted", "Injections resisted", True, "pct"),
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


def markdown(report: dict, compare: dict | None = None) -> str:
    prod, base = report["product"]["summary"], report["baseline"]["summary"]
    lines = [f"# Evaluation report — {report['created']}", "",
             f"Set: `{report['set']}` ({report['items']} items{' , quick subset' if report['quick'] else ''}); "
             f"model `{report['model']}`; prompts `{report['prompts'][:12]}`; "
             f"{report['product']['summary']['generated_uncached']} answers generated, the rest from the answer cache.",
             "", "## Headline: product vs plain baseline", "",
             "| Metric | Product | Baseline |" + (" Δ vs earlier |" if compare else ""),
             "|---|---:|---:|" + ("---:|" if compare else "")]
    for key, label, _, kind in HEADLINE:
        row = f"| {label} | {fmt(prod.get(key), kind)} | {fmt(base.get(key), kind)} |"
        if compare:
            old = compare.get("product", {}).get("summary", {}).get(key)
            new = prod.get(key)
            row += f" {'–' if old is None or new is None else f'{new - old:+.2f}' if kind == 'pct' else f'{(new - old) / 1000:+.1f} s'} |"
        lines.append(row)
    lines += ["", "## Retrieval (answerable items)", "", "| Mode | Part | n | R@1 | R@5 | MRR@10 | nDCG@10 |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for mode, groups in report["retrieval"].items():
        for part in ("all", "same-language", "cross-lingual"):
            g = groups.get(part)
            if g:
                lines.append(f"| {mode} | {part} | {g['n']} | {g['r1']:.2f} | {g['r5']:.2f} | {g['mrr10']:.2f} | {g['ndcg10']:.2f} |")
    for key, title in (("type", "By question type"), ("language", "By question language"), ("overlap", "By lexical overlap with the gold text")):
        lines += ["", f"## {title}", "", "| Group | n | R@5 P/B | Right cited P/B | Refused P/B | Key facts P/B |",
                  "|---|---:|---:|---:|---:|---:|"]
        pb, bb = report["product"]["by"][key], report["baseline"]["by"][key]
        for g, v in pb.items():
            b = bb.get(g, {})
            lines.append(f"| {g} | {v['n']} | {fmt(v['recall_at_5'], 'pct')} / {fmt(b.get('recall_at_5'), 'pct')} | "
                         f"{fmt(v['right_measure_cited'], 'pct')} / {fmt(b.get('right_measure_cited'), 'pct')} | "
                         f"{fmt(v['refused'], 'pct')} / {fmt(b.get('refused'), 'pct')} | "
                         f"{fmt(v['key_fact_recall'], 'pct')} / {fmt(b.get('key_fact_recall'), 'pct')} |")
    if report.get("gate_failures") is not None:
        lines += ["", "## CI gate", ""]
        lines += [f"- FAIL: {f}" for f in report["gate_failures"]] or ["- all thresholds met"]
    lines += faithfulness_section(report)
    lines += ["", "## Method", "", report["method"], ""]
    misses = [r for r in report["product"]["rows"] if r["answerable"] and not r.get("right_cited")][:30]
    if misses:
        lines += ["## Answerable items where the product did not cite a gold measure", ""]
        lines += [f"- `{r['id']}` ({r['type']}, {r['language']}): {'refused' if r['refused'] else 'cited ' + ', '.join(r['cited'])}"
                  for r in misses]
    return "\n".join(lines) + "\n"


def faithfulness_section(report: dict) -> list[str]:
    """The judge's own accuracy on the hand-written references, by split, then every product answer with
    a sentence its cited measures do not support, and why."""
    lines = ["", "## Faithfulness: the judge and the answers it flags", ""]
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
    return lines


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
