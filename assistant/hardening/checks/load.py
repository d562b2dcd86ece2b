"""(a) Concurrent sessions through the HTTP API: latency, failed or dropped requests, overlapping model calls."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter

from ...web.local_server import LocalServer
from ..rig import Figure, Rig, percentile


def post_with_retries(client, path: str, body: dict, headers: dict, patience_s: float = 600.0) -> dict:
    """POST, honouring 503 + Retry-After as a polite client does (with up to 1 s of jitter, so the
    turned-away do not all come back in the same instant). Returns what happened."""
    t0 = time.perf_counter()
    retries = 0
    jitter = random.Random(json.dumps(body, sort_keys=True) + json.dumps(headers, sort_keys=True))
    while True:
        t1 = time.perf_counter()
        try:
            r = client.post(path, json=body, headers=headers)
        except Exception as exc:  # a dropped connection is a failure the figures must show
            return {"status": 0, "error": type(exc).__name__, "retries": retries,
                    "service_s": time.perf_counter() - t1, "total_s": time.perf_counter() - t0}
        if r.status_code == 503 and r.headers.get("retry-after", "").isdigit() and time.perf_counter() - t0 < patience_s:
            retries += 1
            time.sleep(int(r.headers["retry-after"]) + jitter.random())
            continue
        out = {"status": r.status_code, "retries": retries, "service_s": time.perf_counter() - t1,
               "total_s": time.perf_counter() - t0, "ref": r.headers.get("x-record-ref")}
        if r.status_code == 200:
            body_json = r.json()
            out |= {"mode": body_json.get("mode"), "citations": len(body_json.get("citations", [])),
                    "answer": body_json.get("answer", "")}
        else:
            out["error"] = r.text[:200]
        return out


def load_check(rig: Rig, sessions: int = 20, per_session: int = 5) -> Figure:
    import httpx

    fig = Figure("a", f"{sessions} concurrent sessions x {per_session} questions through the HTTP API")
    llm = rig.model()
    results: list[dict] = []
    lock = threading.Lock()
    app = rig.app(llm, "load")
    with LocalServer(app) as server:
        # One answer first (not counted), so Retry-After comes from a measured answer time, as on a
        # server that has been running, rather than the cold-start guess made for the real model.
        httpx.post(server.url + "/api/ask", json={"question": rig.questions[-1]}, timeout=600)
        calls_before = llm.calls
        barrier = threading.Barrier(sessions)

        def session(i: int) -> None:
            headers = {"X-Session-Id": f"hardening-load-{i:03d}"}
            history: list[list[str]] = []
            with httpx.Client(base_url=server.url, timeout=600) as client:
                barrier.wait()
                for j in range(per_session):
                    question = rig.questions[(i * per_session + j) % len(rig.questions)]
                    out = post_with_retries(client, "/api/ask", {"question": question, "history": history[-1:]},
                                             headers)
                    if out["status"] == 200:
                        history.append([question, out["answer"]])
                    with lock:
                        results.append(out)

        threads = [threading.Thread(target=session, args=(i,)) for i in range(sessions)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    records = app.state.ctx.records
    refs = [r["ref"] for r in results if r.get("ref")]
    stored = sum(1 for ref in refs if records.get(ref) is not None)
    ok = [r for r in results if r["status"] == 200]
    failed = [r for r in results if r["status"] != 200]
    service = [r["service_s"] for r in ok]
    total = [r["total_s"] for r in ok]
    retries = sum(r["retries"] for r in results)
    fig.values = {
        "requests": len(results), "answered": len(ok), "failed": len(failed),
        "statuses": dict(Counter(r["status"] for r in results)),
        "retries_after_503": retries, "requests_retried": sum(1 for r in results if r["retries"]),
        "service_p50_s": round(percentile(service, .5), 2), "service_p95_s": round(percentile(service, .95), 2),
        "end_to_end_p50_s": round(percentile(total, .5), 2), "end_to_end_p95_s": round(percentile(total, .95), 2),
        "modes": dict(Counter(r.get("mode") for r in ok)), "model_calls": llm.calls - calls_before,
        "max_concurrent_model_calls": llm.max_active, "wall_s": round(wall, 1), "records_stored": stored,
    }
    v = fig.values
    fig.lines = [
        f"{v['requests']} requests: {v['answered']} answered, {v['failed']} failed or dropped; "
        f"{v['retries_after_503']} retries after 503+Retry-After ({v['requests_retried']} requests retried)",
        f"latency of the answered attempt p50 {v['service_p50_s']:.2f} s, p95 {v['service_p95_s']:.2f} s; "
        f"end to end with retries p50 {v['end_to_end_p50_s']:.2f} s, p95 {v['end_to_end_p95_s']:.2f} s; wall {v['wall_s']} s",
        f"model calls {v['model_calls']}, most at once {v['max_concurrent_model_calls']}; modes {v['modes']}; "
        f"consultation records stored {stored}",
    ]
    fig.check(stored == len(ok), f"{len(ok) - stored} answered requests have no consultation record")
    fig.check(not failed, f"{len(failed)} requests failed or were dropped: {[r.get('error', r['status']) for r in failed[:3]]}")
    fig.check(len(results) == sessions * per_session, "some sessions did not finish")
    fig.check(llm.max_active <= 1, f"{llm.max_active} model calls overlapped")
    return fig
