"""One set of input limits, with the same message wherever the input arrives."""

import pytest

from assistant.answering.inputs import clean_history, clean_question
from assistant.errors import InputError


def test_a_question_is_cleaned_and_bounded():
    assert clean_question("  patents\u200b in Xuhui? ", 100) == "patents in Xuhui?"
    with pytest.raises(InputError, match="empty"):
        clean_question(" \u200b ", 100)
    with pytest.raises(InputError, match="limit is 10"):
        clean_question("x" * 11, 10)


def test_a_history_keeps_its_last_turns_and_refuses_a_long_message():
    turns = [(f"q{i}", f"a{i}") for i in range(10)]
    assert clean_history(turns, 100, 3) == turns[-3:]
    assert clean_history(turns, 100, 0) == []
    assert clean_history(None, 100, 3) == []
    with pytest.raises(InputError, match="at most 100 characters"):
        clean_history([("q", "a" * 101)], 100, 3)
    with pytest.raises(InputError, match="pair of texts"):
        clean_history([("q", None)], 100, 3)


def test_the_api_and_the_assistant_share_the_limit(fake_settings):
    from fastapi.testclient import TestClient

    from assistant.web.app import create_app

    settings = fake_settings.model_copy(update={"max_history_chars": 200})
    with TestClient(create_app(settings)) as client:
        r = client.post("/api/ask", json={"question": "patents?", "history": [["q", "a" * 201]]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_history"
    assert "at most 200 characters" in r.json()["error"]["message"]
