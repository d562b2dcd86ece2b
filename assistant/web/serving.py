"""The uvicorn server `jxa serve` runs (and the tests' local server), with the connection timeouts
uvicorn lacks: it closes idle keep-alive connections, but a new connection that sends nothing, or
sends its headers a byte at a time, is held for ever. Body timeouts are the Guard's (guard.py).

This module is the one place that touches uvicorn's internals (its h11 protocol's `cycle`,
`transport` and `loop`; tested with uvicorn 0.54).
"""

from __future__ import annotations

import asyncio
import logging

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..config import Settings
from ..privacy import redact_logs


class HeaderTimeoutProtocol(H11Protocol):
    """h11 protocol that closes a connection whose next request's headers have not all arrived
    within `header_timeout_s` of the connection opening or the previous response ending."""

    header_timeout_s = 10.0

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        self._awaiting = None
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._awaiting = self.cycle  # a new request replaces the cycle once its headers are parsed
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.cycle is self._awaiting and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self._awaiting:
            self._disarm()

    def on_response_complete(self) -> None:
        self._arm()
        super().on_response_complete()
        if self.cycle is not self._awaiting or self.transport.is_closing():  # a pipelined request was waiting
            self._disarm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)


def server_config(app, settings: Settings, *, host: str | None = None, port: int | None = None,
                  log_level: str | None = None, **extra) -> uvicorn.Config:
    """uvicorn's Config for the app, with the connection limits of `settings`."""
    protocol = type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": settings.header_timeout_s})
    config = uvicorn.Config(app, host=host or settings.host, port=port or settings.port,
                            log_level=(log_level or settings.log_level).lower(), http=protocol,
                            timeout_keep_alive=settings.keep_alive_s, proxy_headers=False,
                            server_header=False, ws="none", **extra)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # uvicorn's own handlers (set up just now)
        redact_logs(logging.getLogger(name))
    return config
