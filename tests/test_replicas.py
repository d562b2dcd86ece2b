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
