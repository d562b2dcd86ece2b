"""Stored prompt-prefix states: the on-disk store alone, then the real model loading them."""

from __future__ import annotations

import json

import pytest

from assistant.answering.llm import PrefixStates
from assistant.config import Settings
from assistant.errors import BackendError


def _write(content: bytes):
    def write(path):
        path.write_bytes(content)
    return write


def test_store_finds_the_longest_shared_prefix_and_survives_a_restart(tmp_path):
    store = PrefixStates(tmp_path)
    store.add([1, 2, 3, 4], _write(b"a"))
    store.add([1, 2, 9], _write(b"b"))
    assert store.has([1, 2, 3, 4]) and not store.has([1, 2, 3])
    name, shared, tokens = store.best([1, 2, 3, 4, 5, 6])
    assert (shared, tokens) == (4, (1, 2, 3, 4)) and store.path(name).read_bytes() == b"a"
    assert store.best([1, 2, 9, 9])[1] == 3
    again = PrefixStates(tmp_path)
    assert len(again) == 2 and again.best([1, 2, 3, 4, 5])[1] == 4


def test_half_written_or_unreadable_states_are_ignored(tmp_path):
    store = PrefixStates(tmp_path)
    store.add([5, 6, 7], _write(b"ok"))
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "broken.kv").write_bytes(b"x")
    (tmp_path / "orphan.json").write_text(json.dumps({"tokens": [5, 6, 7, 8]}))  # its .kv never landed
    again = PrefixStates(tmp_path)
    assert len(again) == 1 and again.best([5, 6, 7, 8])[1] == 3


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    store = PrefixStates(tmp_path)

    def write(path):
        path.write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        store.add([1, 2], write)
    assert len(store) == 0 and not list(tmp_path.glob("*.json"))
    assert len(PrefixStates(tmp_path)) == 0


def test_discard_removes_both_files(tmp_path):
    store = PrefixStates(tmp_path)
    store.add([3, 1], _write(b"s"))
    name = store.name([3, 1])
    store.discard(name)
    assert not store.has([3, 1]) and not list(tmp_path.iterdir())


def test_canary_is_kept_per_installation(tmp_path):
    from assistant.answering.assistant import load_canary

    first = load_canary(tmp_path)
    assert first.startswith("JXA-") and load_canary(tmp_path) == first
    assert (tmp_path / "canary").stat().st_mode & 0o077 == 0
    (tmp_path / "canary").write_text("tampered")
    assert load_canary(tmp_path) not in (first, "tampered")


# ---------------------------------------------------------------- the real model
@pytest.fixture(scope="module")
def path():
    """The bundled GGUF, assembled and verified as `jxa models` does."""
    from assistant.provision import resolve_llm_model

    return resolve_llm_model(None, Settings.model_fields["cache_dir"].default_factory() / "models")


@pytest.mark.model
def test_real_model_answers_the_same_from_a_stored_prefix(tmp_path, path):
    from assistant.answering.llm import LlamaCppLLM

    system = {"role": "system", "content": "You answer questions about district policy in one short sentence."}
    lead = ("[1] Measure 4 — Supporting start-ups\nThe district provides start-ups with free office space in "
            "its incubator for up to 2 years, and a rent subsidy of 50% in the third year for firms that "
            "create at least 20 jobs. Applications go to the District Science and Technology Commission.")
    question = {"role": "user", "content": lead + "\n\nQuestion: How long is the office space free?"}

    plain = LlamaCppLLM(path, n_ctx=2048, model_sha256="prefix-test")
    expected = "".join(plain.stream([system, question], max_tokens=24, temperature=0, timeout_s=300))
    del plain

    llm = LlamaCppLLM(path, n_ctx=2048, model_sha256="prefix-test", prefix_dir=tmp_path)
    assert llm.warm([system, {"role": "user", "content": lead}])
    assert not llm.warm([system, {"role": "user", "content": lead}])  # stored already
    del llm

    fresh = LlamaCppLLM(path, n_ctx=2048, model_sha256="prefix-test", prefix_dir=tmp_path)
    evaluated: list[int] = []
    eval_tokens = fresh._llm.eval
    fresh._llm.eval = lambda tokens: (evaluated.append(len(tokens)), eval_tokens(tokens))[1]
    text = "".join(fresh.stream([system, question], max_tokens=24, temperature=0, timeout_s=300))
    total = len(fresh._prompt([system, question])[0])
    assert text == expected and "2" in text
    assert evaluated[0] < total - 40  # the prompt was evaluated from the stored state, not from scratch
    del fresh

    for kv in tmp_path.rglob("*.kv"):  # a corrupt state: skipped and deleted, the answer unchanged
        kv.write_bytes(b"not a state")
    broken = LlamaCppLLM(path, n_ctx=2048, model_sha256="prefix-test", prefix_dir=tmp_path)
    assert "".join(broken.stream([system, question], max_tokens=24, temperature=0, timeout_s=300)) == expected
    assert not list(tmp_path.rglob("*.kv")) and len(broken.prefixes) == 0


@pytest.mark.model
def test_real_model_scores_a_question_higher_under_the_measure_that_answers_it(tmp_path, path):
    from assistant.answering.llm import LlamaCppLLM

    system = {"role": "system", "content": "You answer questions about district policy."}
    rent = ("[1] Measure 4 — Supporting start-ups\nThe district provides start-ups with free office space in "
            "its incubator for up to 2 years, and a rent subsidy of 50% in the third year.")
    courts = ("[1] Measure 9 — Commercial disputes\nA commercial mediation window at the district court "
              "settles contract disputes between firms within 30 days.")
    question = "Can a new company get free office space?"

    def asked(lead):
        return [system, {"role": "user", "content": f"{lead}\n\nA question this measure answers: {question}"}]

    llm = LlamaCppLLM(path, n_ctx=2048, model_sha256="score-test", prefix_dir=tmp_path)
    cold = llm.score(asked(rent), question)
    assert cold > llm.score(asked(courts), question) + 0.1
    # From a stored state of the measure's prompt the same score comes back (only the question is evaluated).
    assert llm.warm([system, {"role": "user", "content": rent}])
    assert llm.score(asked(rent), question) == pytest.approx(cold, abs=0.02)
    # ... and generation after scoring is unaffected by what scoring left in the context.
    prompt = [system, {"role": "user", "content": rent + "\n\nQuestion: How long is the office space free?"}]
    after = "".join(llm.stream(prompt, max_tokens=16, temperature=0, timeout_s=300))
    fresh = LlamaCppLLM(path, n_ctx=2048, model_sha256="score-test")
    assert after == "".join(fresh.stream(prompt, max_tokens=16, temperature=0, timeout_s=300))
    with pytest.raises(BackendError):
        llm.score(asked(rent), "not at the end")


def test_store_keeps_to_its_budget_evicting_the_least_recently_used(tmp_path):
    import os

    store = PrefixStates(tmp_path, budget_bytes=250)
    for i in range(3):
        store.add([i, 1], _write(b"x" * 100))
        old = 1_000_000 + i  # distinct, ordered last-use times
        os.utime(tmp_path / f"{store.name([i, 1])}.json", (old, old))
        store._used[store.name([i, 1])] = old  # as a restart would read them
    # The third state pushed the store over 250 bytes: the least recently used (the first) went.
    assert len(store) == 2 and not store.has([0, 1]) and store.total_bytes == 200 and store.full
    store.touch(store.name([1, 1]))  # used just now: the newest
    store.add([3, 1], _write(b"y" * 100))
    assert store.has([1, 1]) and store.has([3, 1]) and not store.has([2, 1])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{store.name(t)}{ext}" for t in ([1, 1], [3, 1]) for ext in (".json", ".kv"))
    # A restart under a smaller budget evicts at once, the oldest first.
    again = PrefixStates(tmp_path, budget_bytes=150)
    assert len(again) == 1 and again.has([3, 1])  # the last one written
    assert not PrefixStates(tmp_path, budget_bytes=None).full
