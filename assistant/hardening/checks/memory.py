"""(g) Sequential requests: resident memory growth per request."""

from __future__ import annotations

import gc
import time

from ...web.local_server import LocalServer
from ..rig import Figure, Rig, rss_bytes


def memory_check(rig: Rig, requests: int = 500, bound_kb: float = 16.0) -> Figure:
    import httpx

    fig = Figure("g", f"{requests} sequential requests: resident memory per request (model: fake-timed)")
    llm = rig.fake_model()
    failed = 0
    warmup = min(50, requests // 5)
    with LocalServer(rig.app(llm, "memory")) as server, httpx.Client(base_url=server.url, timeout=120) as client:
        def ask(i: int) -> None:
            nonlocal failed
            q = rig.questions[i % len(rig.questions)]
            if client.post("/api/ask", json={"question": q}).status_code != 200:
                failed += 1

        for i in range(warmup):
            ask(i)
        gc.collect()
        rss0 = rss_bytes()
        t0 = time.perf_counter()
        for i in range(requests):
            ask(warmup + i)
        seconds = time.perf_counter() - t0
        gc.collect()
        rss1 = rss_bytes()
    per_request_kb = (rss1 - rss0) / requests / 1024
    fig.values = {"requests": requests, "failed": failed, "rss_before_mb": round(rss0 / 2**20, 1),
                  "rss_after_mb": round(rss1 / 2**20, 1), "growth_per_request_kb": round(per_request_kb, 2),
                  "bound_kb": bound_kb, "requests_per_s": round(requests / seconds, 1)}
    fig.lines = [f"RSS {fig.values['rss_before_mb']} MB -> {fig.values['rss_after_mb']} MB over {requests} requests: "
                 f"{per_request_kb:+.2f} KB per request (bound {bound_kb:g} KB); {failed} failed; "
                 f"{fig.values['requests_per_s']} requests/s"]
    fig.check(failed == 0, f"{failed} requests failed")
    fig.check(per_request_kb < bound_kb, f"memory grew {per_request_kb:.1f} KB per request (bound {bound_kb:g} KB)")
    return fig
