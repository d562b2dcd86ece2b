"""The attacks of an outside probe, replayed against the real app on a real uvicorn server on
loopback (chunked bodies, slow and idle connections and keep-alive guessing need the real network
stack), with the fake embedder and model. Each test is one hole; it failed before the fix."""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import threading
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from assistant.hardening.checks.probes import chunked_flood, gradio_ask
from assistant.records import Records
from assistant.web.local_server import LocalServer

IP_QUESTION = "What support is there for protecting intellectual property in Jing'an?"
STAFF_PASSWORD = "correct horse battery"


@pytest.fixture
def serve(fake_settings):
    """`s = serve(kiosk=False, **setting_changes)`: a running server on its own fake assistant."""
    from assistant.answering.assistant import Assistant
    from assistant.web.app import create_app

    running: list[LocalServer] = []

    def start(kiosk: bool = False, **changes) -> LocalServer:
        settings = fake_settings.model_copy(update={"rate_limit_per_min": 0, "staff_password": SecretStr(STAFF_PASSWORD),
                                                    **changes})
        assistant = Assistant.from_settings(settings)
        app = create_app(settings, assistant, kiosk=kiosk)
        server = LocalServer(app).__enter__()
        server.settings, server.assistant, server.ctx = settings, assistant, app.state.ctx
        running.append(server)
        return server

    yield start
    for server in running:
        server.__exit__(None, None, None)


def _fake(assistant):
    """The fake model, inside the deadline the server put around it."""
    from assistant.web.deadline import DeadlineLLM

    llm = assistant.llm
    return llm.inner if isinstance(llm, DeadlineLLM) else llm


def _records(server) -> int:
    return Records(server.settings.db_path).count()


def _basic(password: str, user: str = "staff") -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# ====================================================================== 1. Gradio routes the UI never uses
# Gradio 6's own routes the chat page does not call (the full list is in gradio.routes.App.create_app).
UNUSED_GRADIO_ROUTES = [
    ("POST", "/gradio_api/process_recording"), ("POST", "/gradio_api/upload"), ("GET", "/gradio_api/upload_progress"),
    ("POST", "/gradio_api/vibe-edit"), ("POST", "/gradio_api/undo-vibe-edit"), ("GET", "/gradio_api/vibe-code"),
    ("POST", "/gradio_api/vibe-code"), ("POST", "/gradio_api/vibe-starter-queries"),
    ("POST", "/gradio_api/run/answer"), ("POST", "/gradio_api/api/predict"), ("POST", "/gradio_api/call/predict"),
    ("POST", "/gradio_api/call/v2/predict"), ("POST", "/gradio_api/component_server"),
    ("POST", "/gradio_api/stream/x1"), ("GET", "/gradio_api/stream/a/b/c/playlist.m3u8"),
    ("GET", "/gradio_api/file=/etc/hostname"), ("GET", "/gradio_api/file/etc/hostname"),
    ("GET", "/gradio_api/proxy=http://127.0.0.1:1/"), ("GET", "/gradio_api/custom_component/a/b/c/d"),
    ("GET", "/gradio_api/dev/reload"), ("GET", "/gradio_api/token"), ("GET", "/gradio_api/user"),
    ("GET", "/gradio_api/login_check"), ("GET", "/gradio_api/app_id"), ("GET", "/gradio_api/runs"),
    ("GET", "/gradio_api/deep_link"), ("GET", "/gradio_api/startup-events"), ("POST", "/login"), ("GET", "/logout"), ("GET", "/monitoring"),
    ("GET", "/monitoring/summary"), ("GET", "/svelte/x.js"), ("GET", "/manifest.json"), ("GET", "/pwa_icon"),
]


def test_an_upload_through_process_recording_is_refused_and_stores_nothing(serve, tmp_path):
    s = serve()
    temp = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(os.environ.get("TMPDIR", "/tmp")) / "gradio")
    before = {p for p in temp.rglob("*")} if temp.exists() else set()
    payload = b"\x00\x00\x00\x18ftypmp42" + os.urandom(2_000_000)
    r = httpx.post(s.url + "/gradio_api/process_recording", files={"video": ("x.mp4", payload, "video/mp4")},
                   timeout=60)
    assert r.status_code == 404, r.text[:200]
    assert r.json()["error"]["code"] == "not_found"
    after = {p for p in temp.rglob("*")} if temp.exists() else set()
    assert not [p for p in after - before if p.is_file() and p.stat().st_size >= 1_000_000]


@pytest.mark.parametrize("method, path", UNUSED_GRADIO_ROUTES)
def test_gradio_routes_the_ui_does_not_use_are_not_reachable(serve, method, path):
    s = serve()
    r = httpx.request(method, s.url + path, timeout=30, content=b"{}" if method == "POST" else None,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 404, f"{method} {path}: {r.status_code} {r.text[:120]}"
    assert r.json()["error"]["code"] == "not_found"


def test_gradios_file_route_is_open_only_for_its_own_cache(serve):
    from gradio.utils import get_upload_folder

    s = serve()
    cache = get_upload_folder()
    for path in (f"/gradio_api/file={cache}/../../etc/hostname", f"/gradio_api/file={cache}/0123456789abcdef01/../../x",
                 f"/gradio_api/file={cache}/x/hostname", f"/gradio_api/file={cache}etc/hostname"):
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(4000):
            reply += chunk
        sock.close()
        assert reply.startswith(b"HTTP/1.1 404") and b'"not_found"' in reply, path


def test_the_answer_event_cannot_skip_the_queue(serve):
    s = serve()
    cfg = httpx.get(s.url + "/config", timeout=30).json()
    send_id = next(c["id"] for c in cfg["components"] if c.get("props", {}).get("elem_id") == "jxa-send")
    dep = next(d for d in cfg["dependencies"] if any(t[0] == send_id and t[1] == "click" for t in d["targets"]))
    r = httpx.post(s.url + "/gradio_api/run/predict", timeout=30, json={
        "data": [IP_QUESTION, None, None, None], "fn_index": dep["id"], "session_hash": "skipqueue1"})
    assert r.status_code == 404
    assert _records(s) == 0


# ====================================================================== 2. staff password over Basic auth
def test_basic_auth_guesses_are_counted_and_locked_out(serve):
    s = serve()
    with httpx.Client(base_url=s.url, timeout=30) as client:  # one keep-alive connection, as the probe used
        statuses = [client.get("/insights/gaps.csv", headers=_basic(f"guess-{i}")).status_code for i in range(12)]
        assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429], statuses
        # Locked means locked: the right password does not get in either, by Basic auth or the form.
        assert client.get("/insights", headers=_basic(STAFF_PASSWORD)).status_code == 429
        assert client.post("/insights/login", data={"password": STAFF_PASSWORD},
                           follow_redirects=False).status_code == 429


def test_a_form_lockout_also_stops_basic_auth(serve):
    s = serve()
    with httpx.Client(base_url=s.url, timeout=30) as client:
        for i in range(10):
            client.post("/insights/login", data={"password": f"guess-{i}"})
        assert client.post("/insights/login", data={"password": STAFF_PASSWORD}).status_code == 429
        r = client.get("/insights/gaps.csv", headers=_basic(STAFF_PASSWORD))
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


def test_guesses_from_many_clients_lock_the_login_globally(serve):
    s = serve(trusted_proxies="127.0.0.1", login_failures_global=20)
    with httpx.Client(base_url=s.url, timeout=30) as client:
        for i in range(20):  # two guesses each from ten addresses: no address reaches its own limit
            client.get("/insights/gaps.csv", headers={**_basic(f"guess-{i}"), "X-Forwarded-For": f"203.0.113.{i // 2}"})
        r = client.get("/insights/gaps.csv", headers={**_basic(STAFF_PASSWORD), "X-Forwarded-For": "198.51.100.7"})
        assert r.status_code == 429


# ====================================================================== 3. chunked bodies
@pytest.mark.parametrize("path", ["/api/ask", "/api/feedback", "/v1/chat/completions", "/gradio_api/queue/join",
                                  "/insights/login"])
def test_a_chunked_body_is_cut_off_at_the_limit_while_it_is_read(serve, path):
    s = serve()
    sent, status = chunked_flood(s.port, path, total_mb=100)
    assert sent < 16, f"{path}: the server read {sent} MB before answering {status}"
    assert status in (413, 0)
    assert httpx.get(s.url + "/healthz", timeout=10).status_code == 200


def test_a_chunked_upload_to_the_library_stops_at_the_document_limit(serve):
    from assistant.corpus.read import MAX_BYTES

    s = serve()
    sent, status = chunked_flood(s.port, "/insights/library/preview", total_mb=200,
                                  content_type="multipart/form-data; boundary=x")
    assert sent < MAX_BYTES / 2**20 + 16 and status in (413, 0), (sent, status)


def test_a_declared_oversized_body_is_refused_before_it_is_sent(serve):
    s = serve()
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    sock.sendall(f"POST /gradio_api/queue/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {500 << 20}\r\n\r\n".encode())
    head = sock.recv(200)
    sock.close()
    assert head.startswith(b"HTTP/1.1 413")


# ====================================================================== 4. cross-site questions
def test_a_text_plain_form_post_is_not_taken_as_a_question(serve):
    s = serve()
    body = json.dumps({"question": IP_QUESTION})
    for path in ("/api/ask", "/v1/chat/completions"):
        # What an HTML form with enctype="text/plain" on another site sends: no preflight needed.
        r = httpx.post(s.url + path, content=body, timeout=30,
                       headers={"Content-Type": "text/plain", "Origin": "http://127.0.0.2:8000"})
        assert r.status_code in (403, 415), f"{path}: {r.status_code}"
        r = httpx.post(s.url + path, content=body, timeout=30, headers={"Content-Type": "text/plain"})
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = httpx.post(s.url + "/api/feedback", content='{"ref": "abcdefgh12", "rating": -1}', timeout=30,
                   headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert _records(s) == 0


def test_a_request_from_another_sites_page_is_refused(serve):
    s = serve()
    foreign = {"Origin": "http://127.0.0.2:8000"}
    r = httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, headers=foreign, timeout=30)
    assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin"
    r = httpx.post(s.url + "/gradio_api/queue/join", json={"data": [], "session_hash": "x" * 10}, headers=foreign,
                   timeout=30)
    assert r.status_code == 403
    r = httpx.post(s.url + "/insights/login", data={"password": STAFF_PASSWORD}, headers=foreign, timeout=30,
                   follow_redirects=False)
    assert r.status_code == 403
    assert _records(s) == 0
    # The page's own origin, and a client without a browser, still ask.
    assert httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, headers={"Origin": s.url},
                      timeout=30).status_code == 200
    assert httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, timeout=30).status_code == 200


def test_origins_listed_in_cors_origins_may_ask(serve):
    s = serve(cors_origins="http://portal.example.cn")
    r = httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, timeout=30,
                   headers={"Origin": "http://portal.example.cn"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://portal.example.cn"
    r = httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, timeout=30,
                   headers={"Origin": "http://evil.example"})
    assert r.status_code == 403


# ====================================================================== 5. personal data, end to end
def test_personal_data_in_the_question_history_and_feedback_is_not_stored(serve):
    s = serve()
    card = "6222 0212 3456 7890 123"
    history = [[f"我叫张伟，银行卡号{card}，知识产权保护有什么支持？", "静安区支持知识产权保护。"]]
    r = httpx.post(s.url + "/api/ask", timeout=30, json={"question": "那么专利呢？联系电话021-62345678", "history": history})
    assert r.status_code == 200
    ref = r.headers["x-record-ref"]
    assert httpx.post(s.url + "/api/feedback", timeout=30, json={
        "ref": ref, "rating": -1, "comment": "请联系 li＠example.com 或 １３８ １２３４ ５６７８，护照E12345678"}).status_code == 200
    rec = Records(s.settings.db_path).get(ref)
    stored = " ".join([rec.question, rec.rewritten_query, rec.answer, rec.feedback_comment or ""])
    for leak in ("张伟", "6222", "7890", "62345678", "li＠example", "１２３４", "E12345678"):
        assert leak not in stored, (leak, stored)


def test_the_server_log_is_redacted(serve, caplog):
    import logging

    from assistant.cli import main

    main(["index", "status", "--index-dir", "/nonexistent"])  # the CLI edge installs the log redaction
    with caplog.at_level(logging.INFO, logger="assistant"):
        logging.getLogger("assistant.web").warning("question from %s: %s", "13812345678", "li@example.com")
    assert "13812345678" not in caplog.text and "li@example.com" not in caplog.text
    assert "[phone]" in caplog.text
    serve()  # the server's own access and error logs too
    from assistant.privacy import RedactingFilter

    for name in ("uvicorn.access", "uvicorn"):  # uvicorn.error writes through "uvicorn"'s handler
        handlers = logging.getLogger(name).handlers
        assert handlers and all(any(isinstance(f, RedactingFilter) for f in h.filters) for h in handlers), name


# ====================================================================== 6. the low findings
def test_the_chat_page_shares_the_per_client_rate_limit(serve):
    s = serve(rate_limit_per_min=3)
    for _ in range(3):
        assert httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, timeout=30).status_code == 200
    assert httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, timeout=30).status_code == 429
    for i in range(4):  # right after the 429, the chat's own event is no way around it
        msg = gradio_ask(s.url, f"{IP_QUESTION} {i}", f"ratelimit{i:04d}")
        assert msg["success"]
    assert _records(s) == 3


def test_an_insights_load_embeds_a_bounded_number_of_questions(serve):
    s = serve(insights_max_questions=100)
    records = Records(s.settings.db_path)
    answer = s.assistant.ask(IP_QUESTION)
    import dataclasses

    for i in range(300):
        records.add(dataclasses.replace(answer, question=f"flood question number {i} about patents"), session_id="s")
    embedder = s.assistant.retriever.embedder
    embedded: list[int] = []
    original = embedder.embed_queries
    embedder.embed_queries = lambda texts: (embedded.append(len(texts)), original(texts))[1]
    assert httpx.get(s.url + "/insights", headers=_basic(STAFF_PASSWORD), timeout=60).status_code == 200
    assert 0 < sum(embedded) <= 100
    embedded.clear()
    assert httpx.get(s.url + "/insights", headers=_basic(STAFF_PASSWORD), timeout=60).status_code == 200
    assert sum(embedded) == 0  # the second load is served from the cache


def test_a_closed_stream_frees_its_queue_place_at_once(serve):
    s = serve(queue_size=1)
    gate = threading.Event()
    llm = _fake(s.assistant)
    llm.script = lambda messages: (gate.wait(60), llm.default_reply(messages))[1]
    body = {"messages": [{"role": "user", "content": IP_QUESTION}], "stream": True}
    worker = s.ctx.worker
    try:
        running = httpx.Client(base_url=s.url, timeout=60)
        first = running.send(running.build_request("POST", "/v1/chat/completions", json=body), stream=True)
        waiting = httpx.Client(base_url=s.url, timeout=60)
        second = waiting.send(waiting.build_request("POST", "/v1/chat/completions", json=body), stream=True)
        assert first.status_code == second.status_code == 200
        assert httpx.post(s.url + "/v1/chat/completions", json=body, timeout=30).status_code == 503
        assert worker.busy == 2
        second.close()
        waiting.close()  # the waiting visitor gives up
        for _ in range(200):
            if worker.busy == 1:
                break
            time.sleep(0.025)
        assert worker.busy == 1  # ... and the place is free while the first answer still runs
        assert not gate.is_set()
        third = httpx.Client(base_url=s.url, timeout=60)
        r = third.send(third.build_request("POST", "/v1/chat/completions", json=body), stream=True)
        assert r.status_code == 200
        r.close()
        third.close()
    finally:
        gate.set()
    first.read()
    first.close()
    running.close()


def test_idle_and_slow_connections_are_closed(serve):
    s = serve(header_timeout_s=1, body_timeout_s=1)

    def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
        sock.settimeout(seconds)
        try:
            data = sock.recv(200)
        except TimeoutError:
            return None
        finally:
            sock.close()
        return data

    idle = socket.create_connection(("127.0.0.1", s.port))
    assert closed_within(idle, 6) is not None  # nothing sent at all
    slow_headers = socket.create_connection(("127.0.0.1", s.port))
    slow_headers.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert closed_within(slow_headers, 6) is not None
    slow_body = socket.create_connection(("127.0.0.1", s.port))
    slow_body.sendall(b"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{\"question\": ")
    reply = closed_within(slow_body, 6)
    assert reply is not None and (reply == b"" or reply.startswith(b"HTTP/1.1 408"))


def test_behind_an_https_proxy_the_staff_cookie_is_secure(serve):
    s = serve(trusted_proxies="127.0.0.1")
    r = httpx.post(s.url + "/insights/login", data={"password": STAFF_PASSWORD}, follow_redirects=False, timeout=30,
                   headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"})
    assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()
    # From an address that is not a configured proxy, the header is not believed.
    s2 = serve()
    r = httpx.post(s2.url + "/insights/login", data={"password": STAFF_PASSWORD}, follow_redirects=False, timeout=30,
                   headers={"X-Forwarded-Proto": "https"})
    assert r.status_code == 303 and "secure" not in r.headers["set-cookie"].lower()


def test_behind_a_proxy_each_client_has_its_own_limit_and_lockout(serve):
    s = serve(trusted_proxies="127.0.0.1", rate_limit_per_min=2)
    a, b = {"X-Forwarded-For": "203.0.113.5"}, {"X-Forwarded-For": "203.0.113.6"}
    codes = [httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, headers=a, timeout=30).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
    assert httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, headers=b, timeout=30).status_code == 200
    for i in range(10):
        httpx.post(s.url + "/insights/login", data={"password": f"guess-{i}"}, headers=a, timeout=30)
    assert httpx.post(s.url + "/insights/login", data={"password": STAFF_PASSWORD}, headers=a,
                      timeout=30).status_code == 429
    assert httpx.post(s.url + "/insights/login", data={"password": STAFF_PASSWORD}, headers=b, timeout=30,
                      follow_redirects=False).status_code == 303


def test_a_forwarded_address_from_an_untrusted_peer_is_ignored(serve):
    s = serve(rate_limit_per_min=2)
    codes = [httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, timeout=30,
                        headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(3)]
    assert codes == [200, 200, 429]


def test_kiosks_behind_one_address_each_have_their_own_limit(serve):
    tokens = "hall-1=" + "a" * 24 + ",hall-2=" + "b" * 24
    s = serve(kiosk_tokens=SecretStr(tokens), rate_limit_per_min=2)
    k1, k2 = {"X-Kiosk-Token": "a" * 24}, {"X-Kiosk-Token": "b" * 24}
    codes = [httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, headers=k1, timeout=30).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]  # a kiosk is still limited
    assert httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, headers=k2, timeout=30).status_code == 200
    # A browser without a token keeps the per-address limit, and a wrong token counts as no token.
    assert httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, timeout=30).status_code == 200
    assert httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, headers={"X-Kiosk-Token": "c" * 24},
                      timeout=30).status_code == 200
    assert httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, timeout=30).status_code == 429
    # The kiosk's browser gets its token as a cookie once, and the chat's own events count as that kiosk.
    with httpx.Client(base_url=s.url, timeout=30) as browser:
        r = browser.get("/kiosk/enroll", params={"token": "b" * 24}, follow_redirects=False)
        assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
        codes = [browser.post("/api/ask", json={"question": IP_QUESTION}).status_code for _ in range(2)]
        assert codes == [200, 429]  # hall-2's second question of the minute was the one above
        assert browser.get("/kiosk/enroll", params={"token": "wrong"}, follow_redirects=False).status_code == 403


def test_records_files_are_readable_by_the_owner_only(serve):
    s = serve()
    assert httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, timeout=30).status_code == 200
    db = Path(s.settings.db_path)
    files = [p for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")) if p.exists()]
    assert len(files) >= 2
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, f"{p.name}: {oct(p.stat().st_mode)}"


@pytest.mark.parametrize("path", ["/", "/config", "/insights", "/healthz", "/api/nothing"])
def test_no_page_can_be_framed_by_another_site(serve, path):
    s = serve()
    r = httpx.get(s.url + path, timeout=30)
    assert r.headers.get("x-frame-options", "").upper() == "DENY", path
    assert "frame-ancestors 'none'" in r.headers.get("content-security-policy", ""), path


@pytest.mark.parametrize("path", ["/gradio_api/info", "/gradio_api/openapi.json", "/openapi.json", "/docs"])
def test_the_route_list_is_not_public(serve, path):
    s = serve()
    r = httpx.get(s.url + path, timeout=30)
    assert r.status_code == 404 and "paths" not in r.text and "named_endpoints" not in r.text


def test_a_staff_login_on_a_kiosk_ends_with_the_idle_reset(serve):
    s = serve(kiosk=True, kiosk_idle_s=1)
    with httpx.Client(base_url=s.url, timeout=30, follow_redirects=True) as browser:
        assert browser.post("/insights/login", data={"password": STAFF_PASSWORD}).status_code == 200
        assert "Demand insights" in browser.get("/insights").text and browser.get("/insights").status_code == 200
        time.sleep(2.5)  # the kiosk is left alone longer than kiosk_idle_s
        assert browser.get("/insights").status_code == 401
    # Off a kiosk, a staff login lasts its normal session.
    desk = serve(kiosk=False, kiosk_idle_s=1)
    with httpx.Client(base_url=desk.url, timeout=30, follow_redirects=True) as browser:
        browser.post("/insights/login", data={"password": STAFF_PASSWORD})
        time.sleep(1.5)
        assert browser.get("/insights").status_code == 200


def test_a_reply_with_the_canary_is_answered_as_any_refusal(serve):
    s = serve()
    llm = _fake(s.assistant)
    llm.script = lambda messages: "NOT_COVERED"
    plain = httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, timeout=30).json()
    llm.script = lambda messages: f"Sure, the code is {s.assistant.canary} [1]."
    probed = httpx.post(s.url + "/api/ask", json={"question": IP_QUESTION}, timeout=30).json()
    assert s.assistant.canary not in json.dumps(probed)
    assert probed["refused"] and plain["refused"]
    for key in ("answer", "refused", "mode", "notice", "citations"):
        assert probed[key] == plain[key], key
