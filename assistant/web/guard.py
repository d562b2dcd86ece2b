"""The gate every request passes before any route sees it (pure ASGI middleware):

1. only the routes the product uses: our own, and the few of Gradio's the chat page calls;
   Gradio's others (uploads, recordings, its API, its route list, file and proxy access) are 404;
2. a state-changing request from a page on another site (its Origin) is refused, unless the
   site is listed in JXA_CORS_ORIGINS;
3. the body is read here, up to the route's limit and within body_timeout_s, whether it comes
   with a Content-Length or chunked: past the limit the answer is 413 and no more is read;
4. every response says it may not be framed by another site, and not to sniff types.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import anyio

from ..config import Settings
from .clients import ClientIdentity

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

# Our own routes; under these prefixes the product answers unknown paths itself with a 404.
OWN_EXACT = {"/healthz", "/readyz", "/insights", "/insights/login", "/insights/logout", "/insights/gaps.csv",
             "/kiosk/enroll"}
OWN_PREFIXES = ("/api/", "/v1/", "/insights/", "/report/")

# Gradio 6's routes that the chat page calls (watched in the browser tests, which fail on any
# request this list refuses), by method. Everything else Gradio serves is refused.
GRADIO_ROUTES: dict[str, re.Pattern] = {
    "GET": re.compile(r"/|/config/?|/theme\.css|/favicon\.ico|/robots\.txt|/(?:assets|static)/[^?]+"
                      r"|/gradio_api/(?:queue/data|heartbeat/[A-Za-z0-9_-]+)"),
    "HEAD": re.compile(r"/"),
    # run/predict carries the events set up with queue=False (language switch, sources, thumbs).
    "POST": re.compile(r"/gradio_api/(?:queue/join|cancel|run/predict)"),
}

GRADIO_BODY_LIMIT = 256_000
DEFAULT_BODY_LIMIT = 64_000
SECURITY_HEADERS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin")]
FRAME_POLICY = b"frame-ancestors 'none'"


def gradio_outputs() -> re.Pattern:
    """A file the app itself handed to the page (the health check's report download): Gradio copies
    it into its cache as CACHE/HASH/NAME and serves it through file=. Nothing else under file=."""
    from gradio.utils import get_upload_folder

    return re.compile(r"/gradio_api/file=" + re.escape(get_upload_folder().rstrip("/")) + r"/[0-9a-f]{16,}/[^/\\]+")


def allowed(method: str, path: str, outputs: re.Pattern | None = None) -> bool:
    if path in OWN_EXACT or path.startswith(OWN_PREFIXES) or method == "OPTIONS":
        return True
    pattern = GRADIO_ROUTES.get(method)
    if pattern and pattern.fullmatch(path):
        return True
    return method in ("GET", "HEAD") and outputs is not None and ".." not in path and bool(outputs.fullmatch(path))


class Guard:
    """ASGI middleware; `limits` maps a path to its body limit in bytes (others: DEFAULT_BODY_LIMIT).

    Example:
        >>> app.add_middleware(Guard, settings=settings, limits={"/api/ask": 900_000})
    """

    def __init__(self, app, *, settings: Settings, limits: dict[str, int]):
        self.app = app
        self.settings = settings
        self.limits = limits
        self.origins = set(settings.cors_origin_list)
        self.identity = ClientIdentity(settings)
        self.outputs = gradio_outputs()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "websocket":  # nothing here speaks websocket
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._with_headers(send)
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if not allowed(method, path, self.outputs):
            await _error(send, 404, "not_found", f"no endpoint {path}")
            return
        if method not in SAFE_METHODS and not self._same_site(headers, scope):
            await _error(send, 403, "cross_origin", "requests from pages of other sites are not accepted; "
                                                    "list the site in JXA_CORS_ORIGINS to allow it")
            return
        limit = self._limit(path)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _error(send, 413, "too_large", f"the request body is larger than {limit:,} bytes", close=True)
            return
        body = await self._read_body(receive, limit)
        if isinstance(body, int):
            if body == 413:
                await _error(send, 413, "too_large", f"the request body is larger than {limit:,} bytes", close=True)
            elif body == 408:
                await _error(send, 408, "timeout", f"the request body did not arrive within "
                                                   f"{self.settings.body_timeout_s:g} s", close=True)
            return
        await self.app(scope, _replay(body, receive), send)

    # ---------------------------------------------------------------- the steps
    def _limit(self, path: str) -> int:
        if path in self.limits:
            return self.limits[path]
        return GRADIO_BODY_LIMIT if path.startswith("/gradio_api/") else DEFAULT_BODY_LIMIT

    def _same_site(self, headers: dict[str, str], scope) -> bool:
        """No Origin: not a browser on another site (browsers send one with every cross-site POST)."""
        origin = headers.get("origin")
        if origin is None:
            return headers.get("sec-fetch-site", "same-origin") != "cross-site"
        origin = origin.strip().rstrip("/")
        if origin in self.origins:
            return True
        if origin == "null":  # a sandboxed frame, a file: page, or a page sending no referrer
            return headers.get("sec-fetch-site") == "same-origin"
        host = headers.get("host", "")
        peer = scope["client"][0] if scope.get("client") else None
        if self.identity.trusted(peer) and headers.get("x-forwarded-host"):
            host = headers["x-forwarded-host"].split(",")[0].strip()
        return bool(host) and urlsplit(origin).netloc.lower() == host.lower()

    async def _read_body(self, receive, limit: int) -> bytes | dict | int:
        """The whole body, or the disconnect message, or 413 / 408; never more than `limit` bytes."""
        chunks: list[bytes] = []
        size = 0
        with anyio.move_on_after(self.settings.body_timeout_s):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return message
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    return 413
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
        return 408

    def _with_headers(self, send):
        async def wrapped(message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-frame-options"]
                csp = [i for i, (k, _) in enumerate(headers) if k.lower() == b"content-security-policy"]
                if csp:
                    k, v = headers[csp[0]]
                    if b"frame-ancestors" not in v:
                        headers[csp[0]] = (k, v.rstrip(b"; ") + b"; " + FRAME_POLICY)
                else:
                    headers.append((b"content-security-policy", FRAME_POLICY))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present or k == b"x-frame-options"]
                message = {**message, "headers": headers}
            await send(message)

        return wrapped


def _replay(body: bytes | dict, receive):
    """A receive that hands the app the body read already, then passes on (a disconnect, later)."""
    first = body if isinstance(body, dict) else {"type": "http.request", "body": body, "more_body": False}
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return first
        return await receive()

    return replay


async def _error(send, status: int, code: str, message: str, *, close: bool = False) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:  # the rest of an oversized or stalled body is not worth reading
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
