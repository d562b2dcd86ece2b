"""(b) A burst of three times the queue: every rejection a 503 with Retry-After, no other 5xx, the time to recover."""

from __future__ import annotations

import threading
import time
from collections import Counter

from ...web.local_server import LocalServer
from ..rig import Figure, Rig
from .load import post_with_retries


def burst_check(rig: Rig) -> Figure:
    import httpx

    queue_size = rig.settings.queue_size
    n = max(3, 3 * queue_size)
    fig = Figure("b", f"a burst of {n} requests at once (3x the queue of {queue_size})")
    llm = rig.model()
    question = rig.questions[0]
    replies: list[dict] = []
    lock = threading.Lock()
    with LocalServer(rig.app(llm, "burst")) as server:
        # One answer first, as on a server that has been running: Retry-After then comes from a
        # measured answer time instead of the cold-start guess.
        httpx.post(server.url + "/api/ask", json={"question": question}, timeout=600)
        barrier = threading.Barrier(n)

        def one(i: int) -> None:
            with httpx.Client(base_url=server.url, timeout=600) as client:
                barrier.wait()
                r = client.post("/api/ask", json={"question": question})
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                reply = {"status": r.status_code, "retry_after": r.headers.get("retry-after"),
                         "code": (body.get("error") or {}).get("code"), "served": r.status_code == 200}
                with lock:
                    replies.append(reply)
                if r.status_code == 503:  # then as a polite client: come back when told to
                    later = post_with_retries(client, "/api/ask", {"question": question}, {})
                    reply["served"] = later["status"] == 200

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        rejected_at = None
        # The rejections come back at once; wait for them, then time a fresh client's first success.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                done = [r for r in replies if r["status"] != 200]
            if len(done) >= n - (queue_size + 1):
                break
            time.sleep(0.01)
        rejected_at = time.perf_counter()
        recovered_s = None
        attempts = 0
        with httpx.Client(base_url=server.url, timeout=600) as client:
            while time.perf_counter() - rejected_at < 300:
                attempts += 1
                r = client.post("/api/ask", json={"question": question})
                if r.status_code == 200:
                    recovered_s = time.perf_counter() - rejected_at
                    break
                time.sleep(0.1)
        for t in threads:
            t.join()
    rejected = [r for r in replies if r["status"] == 503]
    other_5xx = [r for r in replies if r["status"] >= 500 and r["status"] != 503]
    unexpected = [r for r in replies if r["status"] not in (200, 503)]
    with_header = [r for r in rejected if (r["retry_after"] or "").isdigit() and int(r["retry_after"]) >= 1]
    fig.values = {"requests": n, "accepted": sum(1 for r in replies if r["status"] == 200), "rejected_503": len(rejected),
                  "served_in_the_end": sum(1 for r in replies if r["served"]),
                  "rejected_with_retry_after": len(with_header), "codes": dict(Counter(r["code"] for r in rejected)),
                  "retry_after_s": sorted({int(r["retry_after"]) for r in with_header}),
                  "other_5xx": len(other_5xx), "other_statuses": dict(Counter(r["status"] for r in unexpected)),
                  "recovery_s": None if recovered_s is None else round(recovered_s, 2), "recovery_attempts": attempts,
                  "model_calls": llm.calls, "max_concurrent_model_calls": llm.max_active}
    v = fig.values
    fig.lines = [
        f"{v['accepted']} accepted, {v['rejected_503']} rejected with 503 ({v['rejected_with_retry_after']} with "
        f"Retry-After {v['retry_after_s']} s, codes {v['codes']}); other 5xx {v['other_5xx']}",
        f"recovery: a new request succeeded {v['recovery_s']} s after the rejections ({attempts} tries); "
        f"{v['served_in_the_end']}/{n} served in the end by honouring Retry-After; "
        f"model calls at once {v['max_concurrent_model_calls']}",
    ]
    fig.check(v["served_in_the_end"] == n, f"{n - v['served_in_the_end']} burst requests were never served")
    fig.check(len(rejected) > 0, "no request was rejected: the queue bound did not hold")
    fig.check(len(with_header) == len(rejected), "a 503 came without a usable Retry-After")
    fig.check(not other_5xx, f"{len(other_5xx)} responses were 5xx other than 503")
    fig.check(not unexpected, f"unexpected statuses {v['other_statuses']}")
    fig.check(v["accepted"] <= queue_size + 1, f"{v['accepted']} accepted, more than the {queue_size + 1} places")
    fig.check(recovered_s is not None, "the server did not answer again after the burst")
    fig.check(llm.max_active <= 1, f"{llm.max_active} model calls overlapped")
    return fig
