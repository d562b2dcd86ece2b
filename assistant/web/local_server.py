"""The app served by uvicorn on a free 127.0.0.1 port in a thread: for browser tests and the
hardening harness, which both need a real server and the real network stack."""

from __future__ import annotations

import socket
import threading
import time


class LocalServer:
    """Context manager: starts the server and waits until it accepts requests, or until `ready_path`
    answers 200 when one is given (e.g. "/readyz": the model is loaded)."""

    def __init__(self, app, *, ready_path: str | None = "/readyz", timeout_s: float = 120.0):
        import uvicorn

        from ..config import Settings
        from .serving import server_config

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_path = ready_path
        self.timeout_s = timeout_s
        # The app's own settings, so the connection limits are those `jxa serve` would apply.
        ctx = getattr(getattr(app, "state", None), "ctx", None)
        settings = ctx.settings if ctx is not None else Settings()
        self.server = uvicorn.Server(server_config(app, settings, host="127.0.0.1", port=self.port, log_level="error",
                                                   timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, name="jxa-local-server", daemon=True)

    def __enter__(self) -> LocalServer:
        import httpx

        self.thread.start()
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.server.started:
                if self.ready_path is None:
                    return self
                try:
                    if httpx.get(self.url + self.ready_path, timeout=5).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.025)
        raise RuntimeError(f"the server did not become ready within {self.timeout_s:.0f} s")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)
