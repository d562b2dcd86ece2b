"""Check (i) of `jxa hardening`: the attacks of an outside probe, replayed against the real server.

Each line is one hole the probe found, measured as the attacker would see it: Gradio routes the
chat never uses, staff-password guesses over HTTP Basic, chunked bodies, cross-site questions,
personal data kept, and the low findings (the chat's rate limit, insights' embedding cost, closed
streams, idle connections, proxies, file modes, framing, the route list, a kiosk's staff login, a
canary-leaking reply). The model is always the timed fake: these are checks of the web layer.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import select
import socket
import stat
import threading
import time
from pathlib import Path

from pydantic import SecretStr

from ...testing.fakes import TimedLLM
from ...web.local_server import LocalServer
from ..rig import Figure, Rig

STAFF_PASSWORD = "probe-staff-password"
QUESTION = "What support is there for protecting intellectual property in Jing'an?"

# Gradio 6 routes the chat page never calls (gradio.routes.App.create_app has them all).
UNUSED_GRADIO_ROUTES = (
    ("POST", "/gradio_api/process_recording"), ("POST", "/gradio_api/upload"), ("POST", "/gradio_api/vibe-edit"),
    ("POST", "/gradio_api/vibe-code"), ("POST", "/gradio_api/api/predict"), ("POST", "/gradio_api/call/predict"),
    ("POST", "/gradio_api/component_server"), ("GET", "/gradio_api/file=/etc/hostname"),
    ("GET", "/gradio_api/proxy=http://127.0.0.1:1/"), ("GET", "/gradio_api/info"), ("GET", "/gradio_api/openapi.json"),
    ("GET", "/openapi.json"), ("GET", "/monitoring"), ("GET", "/gradio_api/token"), ("POST", "/login"),
    ("GET", "/gradio_api/startup-events"),
)

# Personal data as enterprises type it; none of it may reach the records.
PERSONAL = ("我叫张伟", "联系人：李娜", "6222 0212 3456 7890 123", "6222021234567890123", "91310101MA1FPX1234",
            "１３８１２３４５６７８", "138.1234.5678", "021-62345678", "110105491231002", "护照E12345678",
            "li＠example.com", "josé@correo.es", "+44 20 7946 0958")
LEAKS = ("张伟", "李娜", "3456 7890", "6222021234567890123", "91310101MA1FPX1234", "１２３４５６７８", "1234.5678",
         "62345678", "110105491231002", "E12345678", "li＠example", "josé@", "7946 0958")


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"staff:{password}".encode()).decode()}


def chunked_flood(port: int, path: str, total_mb: int = 100, content_type: str = "application/json") -> tuple[int, int]:
    """POST `total_mb` MB in 1 MB chunks until the server answers or stops reading. Returns
    (MB sent, status; 0 when the connection was closed without an answer)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
                 f"Transfer-Encoding: chunked\r\n\r\n".encode())
    chunk = b"1" * (1 << 20)
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent = 0
    try:
        while sent < total_mb:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered (or hung up) before the body was whole
            sock.sendall(frame)
            sent += 1
        else:
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server stopped reading: the client's buffers are full, or it hung up
    try:
        sock.settimeout(30)
        head = sock.recv(200)
    except OSError:
        head = b""
    sock.close()
    return sent, int(head.split()[1]) if head.startswith(b"HTTP/1.1 ") else 0


def gradio_ask(url: str, question: str, session_hash: str) -> dict:
    """Ask through the chat's own Gradio event, as its page does: join the queue, read the stream."""
    import httpx

    cfg = httpx.get(url + "/config", timeout=30).json()
    send_id = next(c["id"] for c in cfg["components"] if c.get("props", {}).get("elem_id") == "jxa-send")
    dep = next(d for d in cfg["dependencies"] if any(t[0] == send_id and t[1] == "click" for t in d["targets"]))
    data = [question] + [None] * (len(dep["inputs"]) - 1)
    r = httpx.post(url + "/gradio_api/queue/join", timeout=30, json={
        "data": data, "fn_index": dep["id"], "session_hash": session_hash, "trigger_id": send_id, "event_data": None})
    r.raise_for_status()
    with httpx.stream("GET", url + "/gradio_api/queue/data", params={"session_hash": session_hash}, timeout=60) as st:
        for line in st.iter_lines():
            if line.startswith("data:"):
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    return msg
    raise RuntimeError("the chat event never completed")


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes (or answers on) `sock` within `seconds`."""
    sock.settimeout(seconds)
    try:
        sock.recv(200)
        return True
    except TimeoutError:
        return False
    except OSError:
        return True
    finally:
        sock.close()


def _server(rig: Rig, name: str, *, kiosk: bool = False, llm=None, **changes):
    from ...records import Records
    from ...web.app import create_app

    settings = rig.settings.model_copy(update={"db_path": rig.work / f"records-{name}.sqlite3",
                                               "staff_password": SecretStr(STAFF_PASSWORD), **changes})
    assistant = rig.assistant(llm or TimedLLM(0.0))
    app = create_app(settings, assistant, kiosk=kiosk)
    return LocalServer(app), Records(settings.db_path), assistant, app.state.ctx


def probe_check(rig: Rig) -> Figure:
    import httpx

    fig = Figure("i", "the outside probe's attacks: routes, password guessing, bodies, cross-site, personal data, "
                      "and the low findings")
    v: dict = {}
    server, records, assistant, ctx = _server(rig, "probe", rate_limit_per_min=0)
    with server as s, httpx.Client(base_url=s.url, timeout=60) as client:
        # 1. Gradio routes the chat does not use
        reachable = [f"{m} {p}: {client.request(m, p, content=b'{}', headers={'Content-Type': 'application/json'}).status_code}"
                     for m, p in UNUSED_GRADIO_ROUTES]
        v["unused_routes_reachable"] = [r for r in reachable if not r.endswith(": 404")]
        # 2. password guessing over HTTP Basic on one keep-alive connection
        codes = [client.get("/insights/gaps.csv", headers=basic(f"guess-{i}")).status_code for i in range(30)]
        v["basic_guesses_checked"] = codes.index(429) if 429 in codes else len(codes)
        v["right_password_while_locked"] = client.get("/insights", headers=basic(STAFF_PASSWORD)).status_code
        # 3. chunked bodies
        v["chunked_mb_read"] = {p: chunked_flood(s.port, p, 100)[0]
                                for p in ("/api/ask", "/api/feedback", "/gradio_api/queue/join")}
        # 4. cross-site questions
        before = records.count()
        plain = client.post("/api/ask", content=json.dumps({"question": QUESTION}), headers={"Content-Type": "text/plain"})
        foreign = client.post("/api/ask", json={"question": QUESTION}, headers={"Origin": "http://127.0.0.2:8000"})
        v["cross_site_statuses"] = [plain.status_code, foreign.status_code]
        v["cross_site_recorded"] = records.count() - before
        # 5. personal data in questions, history and feedback
        r = client.post("/api/ask", json={"question": "联系 " + "，".join(PERSONAL[:7]),
                                          "history": [["，".join(PERSONAL[7:]), "好的。"]]})
        client.post("/api/feedback", json={"ref": r.headers.get("x-record-ref", ""), "rating": -1,
                                           "comment": " ".join(PERSONAL)})
        rec = records.get(r.headers.get("x-record-ref", ""))
        kept = " ".join([rec.question, rec.rewritten_query, rec.feedback_comment or ""]) if rec else ""
        v["personal_data_kept"] = [leak for leak in LEAKS if leak in kept]
        # 6. the low findings
        v["frame_headers_on_chat"] = (client.get("/").headers.get("x-frame-options") == "DENY")
        v["route_list_status"] = client.get("/gradio_api/info").status_code
        db = Path(ctx.settings.db_path)
        v["records_file_modes"] = sorted({oct(stat.S_IMODE(p.stat().st_mode)) for p in
                                          (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"))
                                          if p.exists()})
        idle = socket.create_connection(("127.0.0.1", s.port))
        v["idle_connection_closed"] = closed_within(idle, ctx.settings.header_timeout_s + 5)
    v |= _rate_limits(rig) | _closed_stream(rig) | _proxies(rig) | _kiosk_staff(rig) | _canary(rig)
    v |= _insights_cost(rig)
    fig.values = v
    fig.lines = [
        f"unused Gradio routes reachable: {len(v['unused_routes_reachable'])} of {len(UNUSED_GRADIO_ROUTES)}",
        f"Basic-auth guesses checked before 429: {v['basic_guesses_checked']}; the right password while locked: "
        f"{v['right_password_while_locked']}",
        f"chunked 100 MB bodies, MB read before the answer: {v['chunked_mb_read']}",
        f"cross-site questions (text/plain, foreign Origin): {v['cross_site_statuses']}, recorded "
        f"{v['cross_site_recorded']}",
        f"personal data kept in the records: {len(v['personal_data_kept'])} of {len(LEAKS)} {v['personal_data_kept']}",
        f"chat questions recorded past the per-client limit: {v['chat_past_limit']}; insights embeddings for "
        f"{v['insights_flood']} new questions: {v['insights_embedded']} (bound {v['insights_bound']})",
        f"closed stream frees its place at once: {v['closed_stream_freed']}; idle connection closed: "
        f"{v['idle_connection_closed']}; framing refused: {v['frame_headers_on_chat']}; route list: "
        f"{v['route_list_status']}; records files {v['records_file_modes']}",
        f"behind a proxy: Secure cookie {v['secure_cookie_behind_proxy']}, own buckets {v['own_buckets_behind_proxy']}; "
        f"kiosk tokens own buckets {v['own_buckets_per_kiosk']}; kiosk staff login after idle: "
        f"{v['kiosk_staff_after_idle']}; canary reply answered as a refusal: {v['canary_as_refusal']}",
    ]
    fig.check(not v["unused_routes_reachable"], f"routes reachable: {v['unused_routes_reachable'][:4]}")
    fig.check(v["basic_guesses_checked"] <= rig.settings.login_failures_per_client,
              f"{v['basic_guesses_checked']} Basic-auth guesses checked without a lockout")
    fig.check(v["right_password_while_locked"] == 429, "the right password got in while the login was locked")
    fig.check(all(mb < 16 for mb in v["chunked_mb_read"].values()), f"chunked bodies read: {v['chunked_mb_read']}")
    fig.check(v["cross_site_recorded"] == 0 and all(c in (403, 415) for c in v["cross_site_statuses"]),
              f"cross-site questions accepted: {v['cross_site_statuses']}")
    fig.check(not v["personal_data_kept"], f"personal data kept: {v['personal_data_kept']}")
    fig.check(v["chat_past_limit"] == 0, f"{v['chat_past_limit']} chat questions past the per-client limit")
    fig.check(v["insights_embedded"] <= v["insights_bound"], "insights embedded more questions than its bound")
    fig.check(v["closed_stream_freed"], "a closed stream kept its place in the queue")
    fig.check(v["idle_connection_closed"], "an idle connection was held open")
    fig.check(v["secure_cookie_behind_proxy"] and v["own_buckets_behind_proxy"] and v["own_buckets_per_kiosk"],
              "clients behind a proxy or kiosks share one identity, or the cookie is not Secure behind HTTPS")
    fig.check(v["records_file_modes"] == ["0o600"], f"records files {v['records_file_modes']}")
    fig.check(v["frame_headers_on_chat"] and v["route_list_status"] == 404, "the chat can be framed or the route "
                                                                             "list is public")
    fig.check(v["kiosk_staff_after_idle"] == 401, "a staff login on a kiosk survived its idle reset")
    fig.check(v["canary_as_refusal"], "a canary-leaking reply was answered differently from a refusal")
    return fig


def _rate_limits(rig: Rig) -> dict:
    import httpx

    server, records, _, _ = _server(rig, "probe-limit", rate_limit_per_min=2)
    with server as s:
        for _ in range(3):
            httpx.post(s.url + "/api/ask", json={"question": QUESTION}, timeout=60)
        before = records.count()
        for i in range(4):
            gradio_ask(s.url, f"{QUESTION} {i}", f"probe-limit-{i}")
        return {"chat_past_limit": records.count() - before}


def _closed_stream(rig: Rig) -> dict:
    import httpx

    gate = threading.Event()
    llm = TimedLLM(0.0)
    inner = llm.stream

    def held(messages, **kw):
        gate.wait(60)
        yield from inner(messages, **kw)

    llm.stream = held
    server, _, _, ctx = _server(rig, "probe-stream", queue_size=1, llm=llm)
    body = {"messages": [{"role": "user", "content": QUESTION}], "stream": True}
    freed = False
    with server as s, httpx.Client(base_url=s.url, timeout=60) as first, httpx.Client(base_url=s.url, timeout=60) as second:
        try:
            a = first.send(first.build_request("POST", "/v1/chat/completions", json=body), stream=True)
            b = second.send(second.build_request("POST", "/v1/chat/completions", json=body), stream=True)
            for _ in range(200):
                if ctx.worker.busy == 2:
                    break
                time.sleep(0.025)
            b.close()
            second.close()
            for _ in range(200):  # while the first answer is still held
                if ctx.worker.busy == 1:
                    freed = True
                    break
                time.sleep(0.025)
        finally:
            gate.set()
        a.read()
        a.close()
    return {"closed_stream_freed": freed}


def _proxies(rig: Rig) -> dict:
    import httpx

    server, _, _, _ = _server(rig, "probe-proxy", trusted_proxies="127.0.0.1", rate_limit_per_min=1,
                              kiosk_tokens=SecretStr("k1=" + "a" * 24 + ",k2=" + "b" * 24))
    with server as s:
        login = httpx.post(s.url + "/insights/login", data={"password": STAFF_PASSWORD}, timeout=30,
                           headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.9"})
        ask = [httpx.post(s.url + "/api/ask", json={"question": QUESTION}, timeout=60,
                          headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(3)]
        kiosks = [httpx.post(s.url + "/api/ask", json={"question": QUESTION}, timeout=60,
                             headers={"X-Kiosk-Token": t * 24}).status_code for t in "ab"]
    return {"secure_cookie_behind_proxy": "secure" in login.headers.get("set-cookie", "").lower(),
            "own_buckets_behind_proxy": ask == [200, 200, 200], "own_buckets_per_kiosk": kiosks == [200, 200]}


def _kiosk_staff(rig: Rig) -> dict:
    import httpx

    server, _, _, _ = _server(rig, "probe-kiosk", kiosk=True, kiosk_idle_s=1)
    with server as s, httpx.Client(base_url=s.url, timeout=30, follow_redirects=True) as browser:
        browser.post("/insights/login", data={"password": STAFF_PASSWORD})
        time.sleep(2.5)  # the kiosk left alone past kiosk_idle_s
        return {"kiosk_staff_after_idle": browser.get("/insights").status_code}


def _canary(rig: Rig) -> dict:
    import httpx

    llm = TimedLLM(0.0)
    server, _, assistant, _ = _server(rig, "probe-canary", llm=llm)
    inner = llm.stream
    reply = {"text": "NOT_COVERED"}

    def scripted(messages, **kw):
        if "Reply with YES or NO only" in messages[-1]["content"]:
            yield from inner(messages, **kw)
        else:
            yield reply["text"]

    llm.stream = scripted
    with server as s:
        plain = httpx.post(s.url + "/api/ask", json={"question": QUESTION}, timeout=60).json()
        reply["text"] = f"Sure: {assistant.canary} [1]."
        probed = httpx.post(s.url + "/api/ask", json={"question": QUESTION}, timeout=60).json()
    keys = ("answer", "refused", "mode", "notice", "citations")
    same = all(plain.get(k) == probed.get(k) for k in keys) and assistant.canary not in json.dumps(probed)
    return {"canary_as_refusal": same}


def _insights_cost(rig: Rig) -> dict:
    import httpx

    bound, flood = 100, 300
    server, records, assistant, _ = _server(rig, "probe-insights", insights_max_questions=bound)
    answer = assistant.ask(QUESTION)
    for i in range(flood):
        records.add(dataclasses.replace(answer, question=f"flood question {i} about patents"), session_id="p")
    embedder = assistant.retriever.embedder
    counted: list[int] = []
    original = embedder.embed_queries
    embedder.embed_queries = lambda texts: (counted.append(len(texts)), original(texts))[1]
    try:
        with server as s:
            httpx.get(s.url + "/insights", headers=basic(STAFF_PASSWORD), timeout=120)
    finally:
        embedder.embed_queries = original
    return {"insights_flood": flood, "insights_embedded": sum(counted), "insights_bound": bound}
