"""(c) The model killed mid-reply or stalled past llm_timeout_s: still a cited extractive answer, on time."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from ...web.local_server import LocalServer
from ..rig import Figure, Rig, percentile


def fault_check(rig: Rig, n_questions: int = 6, timeout_s: float | None = None) -> Figure:
    import httpx

    timeout_s = timeout_s or (1.0 if rig.fake else 4.0)
    fig = Figure("c", f"the model killed mid-reply, or stalled past llm_timeout_s={timeout_s:g}")
    questions = rig.questions[:n_questions]
    rows: list[dict] = []
    for fault in ("killed", "stalled"):
        if fault == "killed":
            llm = rig.model(fail_after=1)  # mid-reply for short replies too (the check, a translation)
            changes: dict[str, Any] = {}
        else:
            llm = rig.model(stall_s=60 * timeout_s, stall_at=0 if not rig.fake else 1)
            changes = {"llm_timeout_s": timeout_s}
        try:
            with LocalServer(rig.app(llm, f"fault-{fault}", **changes)) as server, \
                    httpx.Client(base_url=server.url, timeout=600) as client:
                for q in questions:
                    t0 = time.perf_counter()
                    r = client.post("/api/ask", json={"question": q})
                    elapsed = time.perf_counter() - t0
                    body = r.json()
                    rows.append({"fault": fault, "status": r.status_code, "mode": body.get("mode"),
                                 "citations": len(body.get("citations", [])), "notice": bool(body.get("notice")),
                                 "elapsed_s": elapsed, "calls": llm.calls})
        finally:
            llm.release()
        fig.values[f"{fault}_model_calls"] = llm.calls
        fig.values[f"{fault}_max_concurrent_model_calls"] = llm.max_active
        fig.check(llm.max_active <= 1, f"{fault}: {llm.max_active} model calls overlapped")
    for fault in ("killed", "stalled"):
        mine = [r for r in rows if r["fault"] == fault]
        good = [r for r in mine if r["status"] == 200 and r["mode"] == "extractive" and r["citations"] >= 1 and r["notice"]]
        worst = max((r["elapsed_s"] for r in mine), default=0.0)
        fig.values[fault] = {"requests": len(mine), "cited_extractive": len(good), "max_s": round(worst, 2),
                             "p50_s": round(percentile([r["elapsed_s"] for r in mine], .5), 2),
                             "statuses": dict(Counter(r["status"] for r in mine)),
                             "modes": dict(Counter(r["mode"] for r in mine))}
        fig.lines.append(f"{fault}: {len(good)}/{len(mine)} answered extractively with a citation and a notice; "
                         f"slowest {worst:.2f} s, p50 {fig.values[fault]['p50_s']:.2f} s"
                         + (f" (timeout {timeout_s:g} s)" if fault == "stalled" else ""))
        fig.check(len(good) == len(mine), f"{fault}: {len(mine) - len(good)} requests without a cited extractive answer "
                                          f"({fig.values[fault]['modes']}, {fig.values[fault]['statuses']})")
    # Within the timeout: the model's share is cut at llm_timeout_s; retrieval and verification come on top.
    grace = 2.0 if rig.fake else 6.0
    stalled_worst = fig.values["stalled"]["max_s"]
    fig.check(stalled_worst <= timeout_s + grace,
              f"a stalled request took {stalled_worst:.1f} s, more than the {timeout_s:g} s timeout + {grace:g} s")
    return fig
