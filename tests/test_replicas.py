"""Several app replicas behind one address: shared PostgreSQL records, any replica answers any turn."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from pydantic import SecretStr

from assistant.records_postgres import PostgresRecords
from assistant.web.app import create_app

IP_QUESTION = "What support is there for protecting intellectual property in Jing'an?"


def _ready(client: TestClient) -> None:
    for _ in range(400):
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.025)
    raise AssertionError("the app never became ready")


def test_two_replicas_share_records_and_either_answers_a_follow_up(fake_settings, fake_index_dir, postgres_url):
    from assistant.answering.assistant import Assistant

    settings = fake_settings.model_copy(update={"rate_limit_per_min": 0, "db_url": SecretStr(postgres_url)})
    a = create_app(settings, Assistant.from_settings(settings))
    b = create_app(settings, Assistant.from_settings(settings))
    with TestClient(a) as ca, TestClient(b) as cb:
        _ready(ca)
        _ready(cb)
        first = ca.post("/api/ask", json={"question": IP_QUESTION})
        assert first.status_code == 200, first.text
        # The follow-up goes to the other replica, with the conversation so far in the request.
        follow = cb.post("/api/ask", json={"question": "And who do I contact about it?",
                                           "history": [[IP_QUESTION, first.json()["answer"]]]})
        alone = cb.post("/api/ask", json={"question": "And who do I contact about it?"})
        assert follow.status_code == 200 and alone.status_code == 200
        assert follow.json()["rewritten_query"] != alone.json()["rewritten_query"]
        assert "intellectual property" in follow.json()["rewritten_query"].lower()
        refs = [first.headers["x-record-ref"], follow.headers["x-record-ref"], alone.headers["x-record-ref"]]
        # Feedback on replica A for an answer replica B gave.
        assert ca.post("/api/feedback", json={"ref": refs[1], "rating": 1}).status_code == 200
    store = PostgresRecords(postgres_url)
    assert {r.ref for r in store.iter()} == set(refs)
    assert store.get(refs[1]).feedback == 1
    store.close()


def test_reference_proxy_config_is_valid_nginx(tmp_path):
    """deploy/nginx.conf, rendered for loopback as the load test runs it, passes `nginx -t`."""
    import shutil
    import subprocess

    from assistant.evaluation.scaleout import ROOT, render_nginx

    conf = render_nginx(ROOT / "deploy" / "nginx.conf", listen=18080, replicas=[17861, 17862], folder=tmp_path)
    text = conf.read_text()
    assert "app1:" not in text and "app2:" not in text and "/tmp/nginx" not in text
    assert text.count("127.0.0.1:17861") == 2 and text.count("127.0.0.1:17862") == 2
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    done = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_stalled_model_server_costs_a_bounded_wait_and_overload_is_503(fake_settings):
    """A model server that accepts connections and never answers: the question is answered from the
    text within the model deadline, readiness says why, and a second question finds the queue full."""
    import socket
    import threading

    from assistant.answering.assistant import Assistant

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # take connections, read nothing, answer nothing
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    settings = fake_settings.model_copy(update={"rate_limit_per_min": 0, "llm": f"openai:{url}",
                                                "llm_remote_vocab": False, "llm_timeout_s": 2.0, "queue_size": 0,
                                                "rerank": False})
    try:
        with TestClient(create_app(settings, Assistant.from_settings(settings))) as client:
            for _ in range(400):
                if client.get("/readyz").json().get("status") != "loading":
                    break
                time.sleep(0.025)
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["error"]["code"] == "model_server_unavailable"
            results: dict = {}

            def first() -> None:
                t = time.perf_counter()
                results["first"] = (client.post("/api/ask", json={"question": IP_QUESTION}), time.perf_counter() - t)

            th = threading.Thread(target=first)
            th.start()
            time.sleep(0.5)  # the first question is now waiting on the model
            busy = client.post("/api/ask", json={"question": IP_QUESTION})
            th.join(60)
            assert busy.status_code == 503 and busy.json()["error"]["code"] == "overloaded"
            assert int(busy.headers["retry-after"]) >= 1
            answered, took = results["first"]
            assert answered.status_code == 200
            body = answered.json()
            assert body["mode"] == "extractive" and "unavailable" in body["notice"] and body["citations"]
            assert took < 30  # bounded by the model deadline, not by the stalled socket
    finally:
        stop.set()
        for s in held:
            s.close()
        listener.close()


def test_compose_file_names_real_settings_commands_and_upstreams():
    """Every JXA_ variable in deploy/compose.yaml is a setting, every command a jxa sub-command, and
    nginx's upstreams are the compose file's app services."""
    import re

    import yaml

    from assistant.cli import build_parser
    from assistant.config import Settings
    from assistant.evaluation.scaleout import ROOT

    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"db", "model", "app1", "app2", "proxy"} <= set(services)
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    for name, service in services.items():
        for key in service.get("environment", {}):
            if key.startswith("JXA_"):
                assert key[4:].lower() in Settings.model_fields, f"{name}: {key} is not a setting"
        command = service.get("command")
        if command and command[0].endswith("jxa"):
            assert command[1] in commands, f"{name}: jxa {command[1]} does not exist"
    upstreams = set(re.findall(r"server (\w+):7860", (ROOT / "deploy" / "nginx.conf").read_text()))
    assert upstreams == {n for n in services if n.startswith("app")}
