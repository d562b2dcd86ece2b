"""Who a request comes from, for the rate limit and the login lockout, and whether it came over HTTPS.

A kiosk sending its configured token (the X-Kiosk-Token header, or the cookie `/kiosk/enroll` sets
in the kiosk's browser) is that kiosk, so the kiosks of one service centre behind one NAT address
do not throttle each other. Otherwise the client is the connecting address, or, when that address
is a configured reverse proxy, the address the proxy says it forwarded for (the right-most entry
of X-Forwarded-For that is not itself a proxy: entries left of it are the client's own claim).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from ..config import Settings

KIOSK_HEADER = "x-kiosk-token"
KIOSK_COOKIE = "jxa_kiosk"


def _cookie(headers: Mapping[str, str], name: str) -> str:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


class ClientIdentity:
    """Decides the client key of a request from its headers and the connecting address.

    Example:
        >>> ids = ClientIdentity(Settings(trusted_proxies="10.0.0.1"))
        >>> ids.key({"x-forwarded-for": "203.0.113.5"}, "10.0.0.1")
        'addr:203.0.113.5'
    """

    def __init__(self, settings: Settings):
        self.proxies = settings.trusted_proxy_networks
        # Compared as digests, so the comparison takes the same time whichever token is tried.
        self._kiosks = {hashlib.sha256(token.encode()).digest(): name for token, name in settings.kiosk_token_map.items()}

    def trusted(self, peer: str | None) -> bool:
        if not peer or not self.proxies:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in net for net in self.proxies)

    def kiosk(self, token: str) -> str | None:
        """The kiosk's name for a configured token, else None."""
        if not token or not self._kiosks:
            return None
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        found = None
        for known, name in self._kiosks.items():
            if hmac.compare_digest(digest, known):
                found = name
        return found

    def address(self, headers: Mapping[str, str], peer: str | None) -> str:
        """The client's address: the peer's, or what a trusted proxy forwarded for."""
        if self.trusted(peer):
            hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
            for hop in reversed(hops):
                if not self.trusted(hop):
                    try:
                        return str(ipaddress.ip_address(hop))
                    except ValueError:
                        break  # a malformed entry: the proxy's own address is all we know
        return peer or "unknown"

    def key(self, headers: Mapping[str, str], peer: str | None) -> str:
        name = self.kiosk(headers.get(KIOSK_HEADER, "") or _cookie(headers, KIOSK_COOKIE))
        if name is not None:
            return f"kiosk:{name}"
        return f"addr:{self.address(headers, peer)}"

    def https(self, headers: Mapping[str, str], peer: str | None, scheme: str) -> bool:
        """Whether the visitor's browser reached us over HTTPS (directly, or at a trusted proxy)."""
        if scheme == "https":
            return True
        if self.trusted(peer):
            return headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https"
        return False


def build_router(settings: Settings, identity: ClientIdentity) -> APIRouter:
    """`GET /kiosk/enroll?token=…`, opened once in a kiosk's browser: keeps the token as an HttpOnly
    cookie, so the chat's own requests from that browser count as that kiosk."""
    router = APIRouter()

    @router.get("/kiosk/enroll", include_in_schema=False)
    def enroll(request: Request, token: str = "") -> Response:
        name = identity.kiosk(token)
        if name is None:
            return JSONResponse({"error": {"code": "unknown_kiosk", "message": "that is not a configured kiosk token "
                                                                               "(JXA_KIOSK_TOKENS)"}}, status_code=403)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(KIOSK_COOKIE, token, max_age=10 * 365 * 86400, httponly=True, samesite="strict",
                            secure=identity.https(request.headers, request.client.host if request.client else None,
                                                  request.url.scheme), path="/")
        return response

    return router
