"""The policy health check on the web: `POST /api/match`, the report pages (HTML, PDF, and the
link a kiosk's QR code opens), and the form section of the chat and kiosk pages."""

from __future__ import annotations

import html
import logging
import re
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import anyio
import gradio as gr
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from ..errors import InputError
from ..matching.match import APPLIES, DOES_NOT_APPLY, MAY_APPLY, HealthCheck
from ..matching.profile import Profile, from_sentence
from ..matching.report import render_html, render_pdf
from ..matching.service import Matcher
from .api import ApiError, read_json
from .context import WebContext, new_session_id
from .render import measure_html

log = logging.getLogger(__name__)

MAX_REPORTS = 200  # reports kept for their QR links, newest first
REPORT_TTL_S = 3600.0
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:"}


class MatchBody(BaseModel):
    """Any JSON object: the profile's own check names each wrong field."""

    model_config = ConfigDict(extra="allow")


class ReportStore:
    """Recent health checks under unguessable references, for the kiosk's QR code (memory only)."""

    def __init__(self, limit: int = MAX_REPORTS, ttl_s: float = REPORT_TTL_S):
        self.limit, self.ttl_s = limit, ttl_s
        self._items: OrderedDict[str, tuple[float, HealthCheck]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, check: HealthCheck) -> str:
        ref = secrets.token_urlsafe(12)
        with self._lock:
            self._items[ref] = (time.monotonic(), check)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
        return ref

    def get(self, ref: str) -> HealthCheck | None:
        with self._lock:
            item = self._items.get(ref)
            if item is None or time.monotonic() - item[0] > self.ttl_s:
                self._items.pop(ref, None)
                return None
            return item[1]


class HealthCheckWeb:
    """What the API and the UI share: the matcher, recent reports, and recording."""

    def __init__(self, ctx: WebContext, matcher: Matcher | None = None):
        self.ctx = ctx
        data = ctx.assistant.retriever.data
        self.matcher = matcher or Matcher(ctx.settings, data.documents, data.measures, data.manifest)
        self.reports = ReportStore()

    def profile(self, data: dict[str, Any]) -> Profile:
        """A profile from a JSON object, or from `{"text": "we are a …"}`."""
        if set(data) == {"text"}:
            text = data["text"]
            if not isinstance(text, str) or not text.strip() or len(text) > 2000:
                raise InputError("'text' must be a self-description of at most 2000 characters")
            return from_sentence(text, self.matcher.library.vocabulary, self.matcher.today())
        return Profile.from_json(data, today=self.matcher.today())

    def check(self, profile: Profile, *, session_id: str, channel: str) -> tuple[HealthCheck, str]:
        t = time.perf_counter()
        check = self.matcher.check(profile)
        ms = (time.perf_counter() - t) * 1000
        try:
            self.ctx.records.add_health_check(check, session_id=session_id, channel=channel, total_ms=ms)
        except Exception:  # a full disk must not cost the enterprise its result
            log.exception("health check not recorded")
        return check, self.reports.put(check)


def build_router(ctx: WebContext, web: HealthCheckWeb) -> APIRouter:
    router = APIRouter()

    async def _profile(request: Request) -> Profile:
        body = await read_json(request, MatchBody, 64_000)
        try:
            return web.profile(body.model_dump())
        except InputError as exc:
            raise ApiError(422, "invalid_profile", str(exc)) from None

    def _limit(request: Request) -> None:
        wait = ctx.limiter.check(request.client.host if request.client else "unknown")
        if wait:
            raise ApiError(429, "rate_limited", f"too many requests from this address; try again in {wait} s",
                           {"Retry-After": str(wait)})

    @router.post("/api/match")
    async def match(request: Request) -> JSONResponse:
        _limit(request)
        profile = await _profile(request)
        given = request.headers.get("x-session-id", "")
        session = given if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", given) else new_session_id()
        check, ref = await anyio.to_thread.run_sync(lambda: web.check(profile, session_id=session, channel="api"))
        return JSONResponse(check.to_json(), headers={"X-Report-Ref": ref,
                                                      "X-Library-Version": check.library_version})

    @router.post("/api/match/report")
    async def report(request: Request, format: str = "html") -> Response:
        _limit(request)
        profile = await _profile(request)
        check, _ = await anyio.to_thread.run_sync(lambda: web.check(profile, session_id="report", channel="api"))
        return await _report_response(check, format)

    @router.get("/report/{ref}")
    async def stored(ref: str, format: str = "html") -> Response:
        check = web.reports.get(ref[:64])
        if check is None:
            return HTMLResponse("<!doctype html><p>This report has expired; please run the health check again.</p>",
                                status_code=404, headers=_HEADERS)
        return await _report_response(check, format)

    return router


async def _report_response(check: HealthCheck, format: str) -> Response:
    page = render_html(check, full_rest=True)
    if format == "pdf":
        try:
            pdf = await anyio.to_thread.run_sync(render_pdf, page)
        except RuntimeError as exc:
            raise ApiError(503, "pdf_unavailable", str(exc)) from None
        return Response(pdf, media_type="application/pdf", headers={
            **_HEADERS, "Content-Disposition": f'attachment; filename="health-check-{check.made_on}.pdf"'})
    if format != "html":
        raise ApiError(422, "invalid_request", "format must be 'html' or 'pdf'")
    return HTMLResponse(page, headers=_HEADERS)


# ---------------------------------------------------------------- the form in the chat and kiosk pages
_UI = {
    "title": ("Policy health check", "政策体检"),
    "intro": ("Describe your enterprise once and see every measure in the library that applies, with the "
              "conditions cited. Leave a field empty if you do not know it.",
              "填写一次企业情况，即可看到政策库中所有适用的措施及其条件出处。不清楚的项目可留空。"),
    "district": ("District", "所在区"),
    "industry": ("Industry", "行业"),
    "employees": ("Employees", "员工人数"),
    "founded_year": ("Year founded", "成立年份"),
    "qualifications": ("Qualifications", "已获资质"),
    "none_held": ("None of these", "以上都没有"),
    "needs": ("What support do you need?", "需要哪些支持？"),
    "run": ("Check", "开始体检"),
    "download": ("Download report", "下载报告"),
    "scan": ("Scan to open the report", "扫码打开报告"),
    "error": ("Please check the form: {msg}", "请检查填写内容：{msg}"),
    "count": ("{n} measures", "{n} 条措施"),
    "open": ("Show the measure's full text", "查看措施原文"),
}


_REASON_NAMES = {"expired": ("expired", "已失效"), "other_district": ("other district", "其他区域"),
                 "not_needed": ("not among your needs", "不在需求之内"),
                 "condition_not_met": ("condition not met", "条件不符"), "no_support": ("no support stated", "未写明支持")}


def _u(key: str, lang: str, **kw) -> str:
    return _UI[key][1 if lang == "zh" else 0].format(**kw)


def results_html(check: HealthCheck, ctx: WebContext, lang: str) -> str:
    """The grouped result as the page shows it; every value escaped, each measure's text one click away."""
    e = html.escape
    today = ctx.settings.effective_today()
    titles = {APPLIES: ("Applies", "适用"), MAY_APPLY: ("May apply: information needed", "可能适用：需补充信息"),
              DOES_NOT_APPLY: ("Does not apply", "不适用")}
    marks = {True: "✓", False: "✗", None: "?"}
    out = [f'<div id="jxa-match-result" data-library="{e(check.library_version)}">']
    for level in (APPLIES, MAY_APPLY, DOES_NOT_APPLY):
        rs = check.level(level)
        out.append(f'<section class="jxa-match-group" id="jxa-match-{level}" data-count="{len(rs)}">'
                   f"<h3>{e(titles[level][lang == 'zh'])} · {e(_u('count', lang, n=len(rs)))}</h3>")
        shown = rs if level != DOES_NOT_APPLY else rs[:60]
        if level == DOES_NOT_APPLY and rs:
            counts: dict[str, int] = {}
            for r in rs:
                counts[r.reason_code] = counts.get(r.reason_code, 0) + 1
            why = " · ".join(f"{e(_REASON_NAMES.get(k, (k, k))[lang == 'zh'])} {n}" for k, n in counts.items())
            out.append(f'<details class="jxa-match-rest"><summary>{why}</summary>')
        for r in shown:
            out.append(f'<details class="jxa-match-item" data-measure-id="{e(r.measure.measure_id)}">'
                       f"<summary><b>{e(r.measure.label)}</b><br><span>{e(r.reason)}</span></summary>")
            if r.conditions:
                out.append("<ul>" + "".join(f"<li>{marks[c.met]} {e(c.text)} — <q>{e(c.quote)}</q></li>"
                                            for c in r.conditions) + "</ul>")
            who = "; ".join(r.departments) or r.document.issuer
            out.append(f"<p>→ {e(who)}</p>")
            out.append(measure_html(None, r.measure, r.document, today, lang))
            out.append("</details>")
        if len(rs) > len(shown):
            out.append(f"<p>… {len(rs) - len(shown)}</p>")
        if level == DOES_NOT_APPLY and rs:
            out.append("</details>")
        out.append("</section>")
    out.append("</div>")
    return "".join(out)


def build_section(ctx: WebContext, web: HealthCheckWeb, lang0: str, session_state, lang_state,
                  chat_box=None) -> None:
    """The form and its result, laid out inside the page's Blocks (call within `gr.Blocks()`). A
    question in `chat_box` that describes the enterprise ("we are a 30-person AI start-up in
    Xuhui…") fills the form, opened, for the visitor to check and run."""
    vocab = web.matcher.library.vocabulary
    districts = sorted({d for lab in web.matcher.library.labels.labels.values() for d in lab.scope})
    quals = [(entry.zh if lang0 == "zh" else entry.en, key)
             for key, entry in vocab.beneficiaries.get("qualification", {}).items()]
    quals.append((_u("none_held", lang0), "none"))
    with gr.Accordion(_u("title", lang0), open=False, elem_id="jxa-match") as section:
        gr.Markdown(_u("intro", lang0))
        with gr.Row():
            district = gr.Dropdown(districts, label=_u("district", lang0), allow_custom_value=True, value=None,
                                   elem_id="jxa-match-district")
            industry = gr.Textbox(label=_u("industry", lang0), max_lines=1, max_length=200,
                                  elem_id="jxa-match-industry")
        with gr.Row():
            employees = gr.Number(label=_u("employees", lang0), precision=0, minimum=0, elem_id="jxa-match-employees")
            founded = gr.Number(label=_u("founded_year", lang0), precision=0, minimum=1800,
                                elem_id="jxa-match-founded")
        qualifications = gr.CheckboxGroup(quals, label=_u("qualifications", lang0), elem_id="jxa-match-quals")
        needs = gr.Textbox(label=_u("needs", lang0), lines=2, max_length=1000, elem_id="jxa-match-needs")
        run = gr.Button(_u("run", lang0), variant="primary", elem_id="jxa-match-run")
        result = gr.HTML("", elem_id="jxa-match-output")
        with gr.Row():
            download = gr.DownloadButton(_u("download", lang0), visible=False, elem_id="jxa-match-download")
            qr = gr.HTML("", visible=ctx.kiosk, elem_id="jxa-match-qr")

    def on_run(d, ind, emp, year, qs, nd, session_id, lang, request: gr.Request):
        keys = [k for k in (qs or []) if k != "none"]
        labels = [vocab.label("qualification", k, "en") for k in keys]
        data = {"district": d or None, "industry": ind or None, "employees": None if emp is None else int(emp),
                "founded_year": None if year is None else int(year),
                "qualifications": labels if qs else None, "needs": nd or None, "language": lang}
        try:
            profile = Profile.from_json(data, source="form", today=web.matcher.today())
        except InputError as exc:
            msg = html.escape(_u("error", lang, msg=str(exc)))
            return f'<p class="jxa-match-error">{msg}</p>', gr.update(visible=False), ""
        check, ref = web.check(profile, session_id=session_id or "ui", channel="kiosk" if ctx.kiosk else "web")
        folder = Path(tempfile.mkdtemp(prefix="jxa-report-"))
        path = folder / f"health-check-{check.made_on.isoformat()}.html"
        path.write_text(render_html(check, full_rest=True), encoding="utf-8")
        code = ""
        if ctx.kiosk:
            from ..matching.report import qr_svg

            base = str(request.request.base_url) if request is not None and request.request else "/"
            # An SVG made here from our own URL: nothing from the visitor goes into the markup.
            link = base.rstrip("/") + "/report/" + ref
            code = (f'<div class="jxa-qr" data-url="{html.escape(link)}">{qr_svg(link)}'
                    f'<p>{html.escape(_u("scan", lang))}</p></div>')
        return results_html(check, ctx, lang), gr.update(value=str(path), visible=True), code

    run.click(on_run, [district, industry, employees, founded, qualifications, needs, session_state, lang_state],
              [result, download, qr], api_visibility="private", show_progress="minimal")

    def prefill(text: str):
        p = web.matcher.profile_from_sentence(text or "")
        if p is None:
            return (gr.skip(),) * 6
        return (gr.update(open=True), p.district or gr.skip(), p.industry or gr.skip(),
                gr.skip() if p.employees is None else p.employees,
                gr.skip() if p.founded_year is None else p.founded_year, p.needs or gr.skip())

    if ctx.kiosk:
        # A walk-up screen: the next visitor must not find this enterprise's profile or result.
        active = gr.State(0.0)
        fields = [district, industry, employees, founded, qualifications, needs]
        for component in fields:
            component.input(lambda: time.time(), None, active, queue=False, api_visibility="private",
                            show_progress="hidden")
        run.click(lambda: time.time(), None, active, queue=False, api_visibility="private", show_progress="hidden")

        def idle(last: float):
            if not last or time.time() - last < ctx.settings.kiosk_idle_s:
                return (gr.skip(),) * 11
            return (0.0, gr.update(open=False), None, "", None, None, [], "", "", gr.update(value=None, visible=False),
                    "")

        gr.Timer(1.0).tick(idle, [active], [active, section, district, industry, employees, founded, qualifications,
                                            needs, result, download, qr], queue=False, api_visibility="private",
                           show_progress="hidden")

    if chat_box is not None:
        chat_box.submit(prefill, [chat_box], [section, district, industry, employees, founded, needs], queue=False,
                        api_visibility="private", show_progress="hidden")
