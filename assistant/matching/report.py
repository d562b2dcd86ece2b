"""The health check to take away: a printable HTML page (and PDF through the browser's print), in the
enterprise's language, with the citations, the date it was made and the library version.

Every value from a profile or a document is escaped: the page holds no markup but its own.
"""

from __future__ import annotations

import html

from .match import APPLIES, DOES_NOT_APPLY, MAY_APPLY, HealthCheck, MeasureResult

_W = {
    "title": ("Policy health check", "政策体检报告"),
    "made": ("Made on {date} · policy library version {version}", "生成日期 {date} · 政策库版本 {version}"),
    "profile": ("Your enterprise", "企业情况"),
    "unknown": ("not given", "未填写"),
    "district": ("District", "所在区"),
    "industry": ("Industry", "行业"),
    "employees": ("Employees", "员工人数"),
    "founded_year": ("Founded", "成立年份"),
    "qualifications": ("Qualifications", "资质"),
    "needs": ("Needs", "需求"),
    "none": ("none", "无"),
    APPLIES: ("Applies", "适用"),
    MAY_APPLY: ("May apply: information needed", "可能适用：需补充信息"),
    DOES_NOT_APPLY: ("Does not apply", "不适用"),
    "count": ("{n} measures", "{n} 条措施"),
    "nothing": ("No measure in the library applies on what you told us.", "根据您提供的信息，政策库中暂无适用措施。"),
    "conditions": ("Conditions", "条件"),
    "next": ("Next step: contact {who}", "下一步：联系{who}"),
    "next_issuer": ("Next step: contact the issuing office, {who}", "下一步：联系发文单位{who}"),
    "expired": ("expired", "已失效"),
    "met": ("met", "满足"),
    "not_met": ("not met", "不满足"),
    "unknown_state": ("to confirm", "待确认"),
    "source": ("Source", "出处"),
    "disclaimer": ("This check reads the policy texts held by the service centre; it is not a decision on any "
                   "application. Confirm with the department named before applying.",
                   "本报告依据服务中心收录的政策原文生成，不构成申报结果，申报前请向所列部门确认。"),
    "scan": ("Scan to open this report", "扫码打开本报告"),
    "dna_summary": ("{n} other measures do not apply ({why}).", "另有 {n} 条措施不适用（{why}）。"),
}
_REASONS = {
    "expired": ("expired", "已失效"),
    "other_district": ("other district", "其他区域"),
    "not_needed": ("not among your needs", "不在需求之内"),
    "condition_not_met": ("condition not met", "条件不符"),
    "no_support": ("no support stated", "未写明支持内容"),
}


def _w(key: str, lang: str, **kw) -> str:
    return _W[key][1 if lang == "zh" else 0].format(**kw)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _mark(met: bool | None, lang: str) -> str:
    if met is True:
        return f'<span class="ok">✓ {_e(_w("met", lang))}</span>'
    if met is False:
        return f'<span class="no">✗ {_e(_w("not_met", lang))}</span>'
    return f'<span class="ask">? {_e(_w("unknown_state", lang))}</span>'


def _result_html(r: MeasureResult, lang: str, show_conditions: bool) -> str:
    doc = r.document
    parts = [f'<section class="measure {r.level}" data-measure-id="{_e(r.measure.measure_id)}">',
             f"<h3>{_e(r.measure.label)}</h3>",
             f'<p class="reason">{_e(r.reason)}</p>']
    if show_conditions and r.conditions:
        parts.append(f"<h4>{_e(_w('conditions', lang))}</h4><ul class='conditions'>")
        for c in r.conditions:
            parts.append(f"<li>{_mark(c.met, lang)} {_e(c.text)}<br><q>{_e(c.quote)}</q></li>")
        parts.append("</ul>")
    if show_conditions and r.offer:
        parts.append(f'<blockquote class="offer">{_e(r.offer)}</blockquote>')
    who = "; ".join(r.departments)
    if show_conditions:
        line = _w("next", lang, who=who) if who else _w("next_issuer", lang, who=doc.issuer)
        parts.append(f'<p class="next">{_e(line)}</p>')
    number = f" · {doc.doc_number}" if doc.doc_number else ""
    until = f" · {_w('expired', lang)} {doc.valid_until.isoformat()}" if r.expired and doc.valid_until else ""
    parts.append(f'<p class="source">{_e(_w("source", lang))}: {_e(doc.title)}{_e(number)}{_e(until)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _profile_rows(check: HealthCheck, lang: str) -> str:
    p = check.profile
    rows = []
    for name in ("district", "industry", "employees", "founded_year", "qualifications", "needs"):
        v = getattr(p, name)
        if v is None:
            shown = f'<span class="unknown">{_e(_w("unknown", lang))}</span>'
        elif name == "qualifications":
            shown = _e(", ".join(v) if v else _w("none", lang))
        else:
            shown = _e(v)
        rows.append(f"<tr><th>{_e(_w(name, lang))}</th><td>{shown}</td></tr>")
    return "\n".join(rows)


CSS = """
body{font-family:"Noto Sans CJK SC","Noto Sans SC","PingFang SC","Microsoft YaHei",sans-serif;max-width:52rem;
margin:2rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.5}
h1{margin-bottom:.2rem} .made{color:#555;margin-top:0} table{border-collapse:collapse;margin:1rem 0}
th{text-align:left;padding:.2rem 1rem .2rem 0;color:#444} td{padding:.2rem 0}
.unknown{color:#8a5a00;font-style:italic} h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.measure{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;margin:.8rem 0;break-inside:avoid}
.applies{border-left:6px solid #1a7f37} .may_apply{border-left:6px solid #bf8700} .does_not_apply{border-left:6px solid #aaa}
.measure h3{font-size:1.05rem;margin:.2rem 0} .reason{font-weight:600;margin:.2rem 0}
.conditions{padding-left:1.2rem} q{color:#333;font-size:.92rem} .ok{color:#1a7f37} .no{color:#b42318} .ask{color:#8a5a00}
blockquote.offer{margin:.4rem 0;padding-left:.8rem;border-left:3px solid #ccc;color:#333;font-size:.92rem}
.next{font-weight:600} .source{color:#555;font-size:.85rem} .disclaimer{color:#555;font-size:.85rem;margin-top:2rem}
.qr{float:right;text-align:center;font-size:.8rem} .qr svg{width:8rem;height:8rem}
@media print{body{margin:0;max-width:none} .measure{page-break-inside:avoid}}
"""


def render_html(check: HealthCheck, *, qr_svg: str | None = None, full_rest: bool = False) -> str:
    """The report page. `qr_svg` is an SVG made here (segno), never text from a request."""
    lang = check.profile.lang
    made = _w("made", lang, date=check.made_on.isoformat(), version=check.library_version)
    out = [f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">',
           f"<title>{_e(_w('title', lang))}</title><style>{CSS}</style></head><body>"]
    if qr_svg:
        out.append(f'<div class="qr">{qr_svg}<br>{_e(_w("scan", lang))}</div>')
    out += [f"<h1>{_e(_w('title', lang))}</h1>", f'<p class="made">{_e(made)}</p>',
            f"<h2>{_e(_w('profile', lang))}</h2><table>{_profile_rows(check, lang)}</table>"]
    for level in (APPLIES, MAY_APPLY):
        rs = check.level(level)
        out.append(f'<h2 id="{level}">{_e(_w(level, lang))} · {_e(_w("count", lang, n=len(rs)))}</h2>')
        if level == APPLIES and not rs:
            out.append(f"<p>{_e(_w('nothing', lang))}</p>")
        out += [_result_html(r, lang, True) for r in rs]
    rest = check.level(DOES_NOT_APPLY)
    counts: dict[str, int] = {}
    for r in rest:
        counts[r.reason_code] = counts.get(r.reason_code, 0) + 1
    why = ", ".join(f"{_REASONS.get(k, (k, k))[1 if lang == 'zh' else 0]}: {n}" for k, n in counts.items())
    out.append(f'<h2 id="{DOES_NOT_APPLY}">{_e(_w(DOES_NOT_APPLY, lang))} · {_e(_w("count", lang, n=len(rest)))}</h2>')
    out.append(f"<p>{_e(_w('dna_summary', lang, n=len(rest), why=why))}</p>")
    shown = rest if full_rest else [r for r in rest if r.reason_code == "condition_not_met"]
    out += [_result_html(r, lang, r.reason_code == "condition_not_met") for r in shown]
    out.append(f'<p class="disclaimer">{_e(_w("disclaimer", lang))}</p></body></html>')
    return "\n".join(out)


def qr_svg(url: str) -> str:
    """An inline SVG QR code for `url` (segno); raises ImportError with the install hint."""
    try:
        import segno
    except ImportError as exc:  # pragma: no cover - segno is in the lock file
        raise ImportError("QR codes need segno: pip install segno") from exc
    import io

    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="svg", xmldecl=False, svgns=True, scale=4, border=2)
    return buf.getvalue().decode("utf-8")


def render_pdf(page_html: str) -> bytes:
    """The report printed to PDF by Debian's chromium through Playwright (scripts/browser.sh installs it)."""
    import shutil

    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise RuntimeError("PDF reports need playwright: pip install playwright") from exc
    chromium = shutil.which("chromium")
    if not chromium:
        raise RuntimeError("PDF reports need chromium: run scripts/browser.sh (HTML reports work without it)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            # Offline: the page loads nothing, so block every request a document could name.
            page.route("**/*", lambda route: route.abort())
            page.set_content(page_html, wait_until="domcontentloaded")
            return page.pdf(format="A4", print_background=True,
                            margin={"top": "15mm", "bottom": "15mm", "left": "12mm", "right": "12mm"})
        finally:
            browser.close()
