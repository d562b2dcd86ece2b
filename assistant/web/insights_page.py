"""/insights: the demand summary for staff, behind the staff password.

Plain server-rendered HTML with inline SVG charts: no script, nothing fetched from elsewhere (the
machine is offline and the page shows what the public asked). Login sets an HttpOnly cookie
holding a random token; `curl -u any:PASSWORD` works too, for the CSV.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..insights import Insights, compute, gaps_csv
from .clients import ClientIdentity
from .context import RateLimiter, WebContext

COOKIE = "jxa_staff"
LOGIN_MAX_BODY = 4096
SESSION_S = 8 * 3600
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # with no-referrer a browser's form posts say "Origin: null"
    "Cache-Control": "no-store",
}


class CachedEmbedder:
    """Question vectors remembered by text, so reloading the page does not embed everything again."""

    def __init__(self, embedder, size: int = 20_000):
        self.embedder = embedder
        self.size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = np.asarray(self.embedder.embed_queries(missing), dtype=np.float32)
            with self._lock:
                for text, v in zip(missing, vectors, strict=True):
                    self._cache[text] = v
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        with self._lock:
            return np.stack([self._cache[t] if t in self._cache else
                             np.asarray(self.embedder.embed_queries([t]), dtype=np.float32)[0] for t in texts])


@dataclass(frozen=True)
class Verdict:
    """Whether a request may see the staff pages; `retry_after` > 0 when logins are locked."""

    ok: bool
    retry_after: int = 0


class StaffAuth:
    """The one way in for staff: a login token from the form, or the password itself (the form, or
    HTTP Basic for scripts). Every password given is checked the same way: refused without a look
    while its client, or everyone, has too many recent failures; compared in constant time (as
    digests, so not even the length shows); each failure counted for its client and for all.

    On a kiosk a login token also ends once unused for kiosk_idle_s, as the chat is cleared then:
    the next person at the screen must not find the staff pages open.
    """

    def __init__(self, settings, identity: ClientIdentity, *, idle_s: float | None = None):
        password = settings.staff_password.get_secret_value()
        self.enabled = bool(password)
        self._digest = hashlib.sha256(password.encode("utf-8")).digest()
        self.identity = identity
        self.idle_s = idle_s
        self._tokens: dict[str, tuple[float, float]] = {}  # token -> (expiry, last used)
        self._lock = threading.Lock()
        self.per_client = RateLimiter(settings.login_failures_per_client, window_s=settings.login_lockout_s)
        self.everyone = RateLimiter(settings.login_failures_global, window_s=settings.login_lockout_s)

    def client(self, request: Request) -> str:
        return self.identity.key(request.headers, request.client.host if request.client else None)

    def attempt(self, client: str, given: str) -> Verdict:
        """Check one password from `client`."""
        locked = max(self.per_client.wait(client), self.everyone.wait("*"))
        if locked:  # checked before the password, so guessing stops being possible, not just reported
            return Verdict(False, locked)
        digest = hashlib.sha256(given.encode("utf-8", "replace")).digest()
        if self.enabled and hmac.compare_digest(digest, self._digest):
            return Verdict(True)
        self.per_client.check(client)
        self.everyone.check("*")
        return Verdict(False)

    def issue(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            self._tokens = {k: v for k, v in self._tokens.items() if v[0] > now}
            self._tokens[token] = (now + SESSION_S, now)
        return token

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def _session(self, token: str) -> bool:
        now = time.time()
        with self._lock:
            expiry, used = self._tokens.get(token, (0.0, 0.0))
            if expiry <= now or (self.idle_s is not None and now - used > self.idle_s):
                self._tokens.pop(token, None)
                return False
            self._tokens[token] = (expiry, now)
        return True

    def authorized(self, request: Request) -> bool:
        return self.check(request).ok

    def check(self, request: Request) -> Verdict:
        """A request to a staff page: its login token, or its Basic credentials."""
        if not self.enabled:
            return Verdict(False)
        token = request.cookies.get(COOKIE, "")
        if token and self._session(token):
            return Verdict(True)
        auth = request.headers.get("authorization", "")
        if auth[:6].lower() == "basic ":
            try:
                _, _, password = base64.b64decode(auth[6:], validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return Verdict(False)
            return self.attempt(self.client(request), password)
        return Verdict(False)


# ---------------------------------------------------------------- HTML
PAGE_CSS = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2433; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem; }
h1 { margin: 0 0 0.2rem 0; font-size: 1.6rem; } h2 { margin: 1.8rem 0 0.6rem 0; font-size: 1.2rem; }
.sub { color: #5b6475; margin: 0 0 1rem 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: 0.8rem; }
.card { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 0.8rem 1rem; }
.card b { display: block; font-size: 1.6rem; } .card span { color: #5b6475; font-size: 0.9rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { border-bottom: 1px solid #e4e7ec; padding: 0.45rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; } td.n { text-align: right; white-space: nowrap; }
.ex { color: #5b6475; font-size: 0.9rem; } svg { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; }
.bar { fill: #2f6fde; } .bar-refused { fill: #e0823d; } .axis { fill: #5b6475; font-size: 11px; }
nav { display: flex; gap: 1rem; align-items: center; justify-content: space-between; }
form.inline { display: inline; } a { color: #2456b3; }
.login { max-width: 22rem; margin: 4rem auto; background: #fff; padding: 1.5rem; border-radius: 8px;
         border: 1px solid #dde1e8; }
.login input { width: 100%; font-size: 1rem; padding: 0.5rem; margin: 0.5rem 0 1rem 0; box-sizing: border-box; }
.login button, nav button { font-size: 1rem; padding: 0.45rem 1rem; }
.err { color: #b42318; } .legend span { display: inline-block; width: 0.8rem; height: 0.8rem; margin: 0 0.3rem 0 1rem; }
"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
           f'content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">'
           f"<title>{html.escape(title)}</title><style>{PAGE_CSS}</style></head><body><main>{body}</main></body></html>")
    return HTMLResponse(doc, status_code=status, headers=SECURITY_HEADERS)


def login_form(error: str = "", status: int = 401) -> HTMLResponse:
    err = f'<p class="err" id="login-error">{html.escape(error)}</p>' if error else ""
    body = ('<div class="login"><h1>Demand insights</h1><p class="sub">Staff only. Enter the staff password.</p>'
            f'{err}<form method="post" action="/insights/login"><label for="password">Password</label>'
            '<input type="password" id="password" name="password" autocomplete="current-password" required autofocus>'
            '<button type="submit" id="login-submit">Sign in</button></form></div>')
    return _page("Sign in · Demand insights", body, status)


def locked_form(retry_after: int) -> HTMLResponse:
    response = login_form(f"Too many failed attempts; try again in {retry_after} s.", status=429)
    response.headers["Retry-After"] = str(retry_after)
    return response


def bar_chart_days(ins: Insights, width: int = 1000, height: int = 180) -> str:
    """Questions per day, refused stacked on answered, as inline SVG."""
    days = ins.per_day
    if not days:
        return ""
    top = max(d.total for d in days) or 1
    pad_l, pad_b, pad_t = 34, 22, 10
    inner_w, inner_h = width - pad_l - 8, height - pad_b - pad_t
    step = inner_w / len(days)
    bar_w = max(2.0, step * 0.7)
    parts = [f'<svg role="img" aria-label="Questions per day" width="100%" viewBox="0 0 {width} {height}" '
             f'xmlns="http://www.w3.org/2000/svg" id="chart-days">']
    for frac in (0.0, 0.5, 1.0):
        y = pad_t + inner_h * (1 - frac)
        parts.append(f'<text class="axis" x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end">{round(top * frac)}</text>'
                     f'<line x1="{pad_l}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e7ec"/>')
    label_every = max(1, len(days) // 10)
    for i, d in enumerate(days):
        x = pad_l + i * step + (step - bar_w) / 2
        h_total = inner_h * d.total / top
        h_ref = inner_h * d.refused / top
        y0 = pad_t + inner_h
        title = f"{d.day.isoformat()}: {d.total} questions, {d.refused} refused"
        parts.append(f'<g><title>{html.escape(title)}</title>'
                     f'<rect class="bar" x="{x:.1f}" y="{y0 - h_total:.1f}" width="{bar_w:.1f}" '
                     f'height="{h_total - h_ref:.1f}"/>'
                     f'<rect class="bar-refused" x="{x:.1f}" y="{y0 - h_ref:.1f}" width="{bar_w:.1f}" '
                     f'height="{h_ref:.1f}"/></g>')
        if i % label_every == 0:
            parts.append(f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                         f'{d.day:%m-%d}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart_topics(ins: Insights, width: int = 1000) -> str:
    topics = ins.topics
    if not topics:
        return ""
    row, label_w = 26, 330
    height = row * len(topics) + 10
    top = max(t.count for t in topics) or 1
    parts = [f'<svg role="img" aria-label="Questions per topic" width="100%" viewBox="0 0 {width} {height}" '
             f'xmlns="http://www.w3.org/2000/svg" id="chart-topics">']
    for i, tp in enumerate(topics):
        y = 5 + i * row
        w = (width - label_w - 60) * tp.count / top
        label = tp.label if len(tp.label) <= 44 else tp.label[:43] + "…"
        parts.append(f'<text class="axis" x="{label_w - 8}" y="{y + 16}" text-anchor="end" font-size="13">'
                     f'{html.escape(label)}</text>'
                     f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}"/>'
                     f'<text class="axis" x="{label_w + w + 6:.1f}" y="{y + 16}" font-size="13">{tp.count}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _fmt_ms(v: float | None) -> str:
    return "—" if v is None else f"{v / 1000:.1f} s"


def _fmt_pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.0f}%"


def insights_html(ins: Insights, days: int) -> str:
    e = html.escape
    cards = [
        ("Questions", str(ins.total)), ("Answered", f"{ins.answered} ({_fmt_pct(ins.answered_ratio)})"),
        ("Refused", str(ins.refused)),
        ("Positive feedback", f"{_fmt_pct(ins.feedback_ratio)} ({ins.feedback_up}↑ {ins.feedback_down}↓)"
                              if ins.feedback_ratio is not None else "—"),
        ("Latency p50", _fmt_ms(ins.p50_ms)), ("Latency p95", _fmt_ms(ins.p95_ms)),
    ]
    periods = " · ".join(f'<a href="/insights?days={d}">{d} days</a>' for d in (7, 30, 90, 365))
    out = [
        '<nav><div><h1>Demand insights</h1>'
        f'<p class="sub">Last {days} days · {periods}</p></div>'
        '<form class="inline" method="post" action="/insights/logout"><button type="submit">Sign out</button></form>'
        '</nav>',
        '<div class="cards" id="summary">' + "".join(f'<div class="card"><b>{e(v)}</b><span>{e(k)}</span></div>'
                                                      for k, v in cards) + "</div>",
        '<h2>Questions per day</h2><p class="legend"><span class="bar" style="background:#2f6fde"></span>answered'
        '<span style="background:#e0823d"></span>refused</p>',
        bar_chart_days(ins) or "<p>No questions in this period.</p>",
        "<h2>Topics</h2>",
    ]
    if ins.topics:
        out.append(bar_chart_topics(ins))
        out.append('<table id="topics"><tr><th>Topic (distinctive terms)</th><th>Nearest measure</th>'
                   '<th>Questions</th><th>Refused</th><th>Examples</th></tr>')
        for tp in ins.topics:
            out.append(f"<tr><td>{e(tp.label)}</td><td>{e(tp.measure_label or '—')}</td>"
                       f'<td class="n">{tp.count}</td><td class="n">{tp.refused}</td>'
                       f'<td class="ex">{"<br>".join(e(x) for x in tp.examples)}</td></tr>')
        out.append("</table>")
    else:
        out.append("<p>Not enough questions to group into topics yet.</p>")
    out.append('<h2>Policy gaps <small>(questions the policies could not answer)</small></h2>'
               f'<p><a href="/insights/gaps.csv?days={days}" id="gaps-csv">Download as CSV</a></p>')
    if ins.gaps:
        out.append('<table id="gaps"><tr><th>#</th><th>Question</th><th>Times asked</th><th>Why refused</th>'
                   "<th>Languages</th><th>Last asked</th></tr>")
        for n, g in enumerate(ins.gaps, 1):
            similar = [x for x in g.examples if x != g.question]
            extra = f'<div class="ex">also: {"; ".join(e(x) for x in similar)}</div>' if similar else ""
            out.append(f'<tr><td class="n">{n}</td><td>{e(g.question)}{extra}</td><td class="n">{g.count}</td>'
                       f"<td>{e(', '.join(g.reasons) or '—')}</td><td>{e(' '.join(g.languages))}</td>"
                       f"<td>{g.last_asked.astimezone():%Y-%m-%d %H:%M}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>No unanswered policy questions in this period.</p>")
    out.append(f'<h2>Policy health checks <small>({ins.health_checks} made; the profiles that found nothing '
               'that applies)</small></h2>')
    if ins.health_gaps:
        out.append('<table id="health-gaps"><tr><th>#</th><th>Profile</th><th>Times</th><th>May apply</th>'
                   "<th>Last checked</th></tr>")
        for n, g in enumerate(ins.health_gaps, 1):
            out.append(f'<tr><td class="n">{n}</td><td>{e(g.profile)}</td><td class="n">{g.count}</td>'
                       f'<td class="n">{g.may_apply}</td><td>{g.last_checked.astimezone():%Y-%m-%d %H:%M}</td></tr>')
        out.append("</table>")
    else:
        out.append("<p>No health check came back empty in this period.</p>")
    if ins.comments:
        out.append('<h2>Recent comments</h2><table id="comments"><tr><th></th><th>Comment</th><th>Question</th>'
                   "<th>When</th></tr>")
        for c in ins.comments:
            mark = "👍" if c.feedback > 0 else "👎" if c.feedback < 0 else ""
            out.append(f"<tr><td>{mark}</td><td>{e(c.comment)}</td><td class='ex'>{e(c.question)}</td>"
                       f"<td>{c.created_at.astimezone():%Y-%m-%d %H:%M}</td></tr>")
        out.append("</table>")
    if ins.languages or ins.channels:
        out.append("<h2>Languages and channels</h2><p>" +
                   " · ".join(f"{e(k)}: {v}" for k, v in {**ins.languages, **ins.channels}.items()) + "</p>")
    return "".join(out)


# ---------------------------------------------------------------- routes
def build_router(ctx: WebContext) -> APIRouter:
    router = APIRouter()
    auth = StaffAuth(ctx.settings, ctx.identity, idle_s=ctx.settings.kiosk_idle_s if ctx.kiosk else None)
    embedder = CachedEmbedder(ctx.assistant.retriever.embedder)

    def disabled() -> HTMLResponse:
        return _page("Demand insights", "<h1>Demand insights are disabled</h1><p>Set a staff password "
                     "(the JXA_STAFF_PASSWORD environment variable) and restart the server to enable this page.</p>",
                     status=403)

    def summary(days: int) -> Insights:
        since = datetime.now(UTC) - timedelta(days=days)
        return compute(ctx.records.iter(since=since), embedder=embedder, index=ctx.assistant.retriever.data,
                       since=since, max_embedded=ctx.settings.insights_max_questions)

    def days_param(request: Request) -> int:
        raw = request.query_params.get("days", "30")
        return min(3650, max(1, int(raw))) if raw.isdigit() else 30

    @router.get("/insights", response_class=HTMLResponse)
    def page(request: Request) -> Response:
        if not auth.enabled:
            return disabled()
        verdict = auth.check(request)
        if verdict.retry_after:
            return locked_form(verdict.retry_after)
        if not verdict.ok:
            return login_form()
        days = days_param(request)
        return _page("Demand insights", insights_html(summary(days), days))

    @router.post("/insights/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        if not auth.enabled:
            return disabled()
        client = auth.client(request)
        try:
            form = await request.form()
        except Exception:  # a malformed body is just a failed login
            return login_form("Enter the password.", status=400)
        password = form.get("password")
        if not isinstance(password, str) or not password:
            return login_form("Enter the password.", status=400)
        verdict = auth.attempt(client, password)
        if verdict.retry_after:
            return locked_form(verdict.retry_after)
        if not verdict.ok:
            return login_form("Wrong password.")
        response = RedirectResponse("/insights", status_code=303)
        secure = ctx.identity.https(request.headers, request.client.host if request.client else None,
                                    request.url.scheme)
        response.set_cookie(COOKIE, auth.issue(), max_age=SESSION_S, httponly=True, samesite="strict",
                            secure=secure, path="/insights")
        return response

    @router.post("/insights/logout")
    def logout(request: Request) -> Response:
        auth.revoke(request.cookies.get(COOKIE, ""))
        response = RedirectResponse("/insights", status_code=303)
        response.delete_cookie(COOKIE, path="/insights")
        return response

    @router.get("/insights/gaps.csv")
    def gaps(request: Request) -> Response:
        if not auth.enabled:
            return disabled()
        verdict = auth.check(request)
        if verdict.retry_after:
            return Response(f"too many failed attempts; try again in {verdict.retry_after} s\n", status_code=429,
                            media_type="text/plain", headers={"Retry-After": str(verdict.retry_after)})
        if not verdict.ok:
            return Response("staff password required\n", status_code=401, media_type="text/plain",
                            headers={"WWW-Authenticate": 'Basic realm="jxa insights"'})
        days = days_param(request)
        body = "\ufeff" + gaps_csv(summary(days))  # the BOM makes spreadsheets read the Chinese as UTF-8
        return Response(body, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="policy-gaps-{days}d.csv"', **SECURITY_HEADERS})

    from .library_page import build_router as library_router  # the same login, under the cookie's path

    router.include_router(library_router(ctx, lambda request: auth.check(request).ok, _page, login_form))
    return router
