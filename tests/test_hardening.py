"""Load, faults and hostile input (the checks of `jxa hardening --fake`, smaller), on a real uvicorn
server, real FAISS and real SQLite, with the harness's own timed fake model and lexical embedder."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time

import pytest
from conftest import SEEDS
from fastapi.testclient import TestClient

from assistant.errors import BackendError
from assistant.hardening import payloads
from assistant.hardening.checks import (
    burst,
    faults,
    index_kill,
    injection,
    load,
    malformed,
    memory,
    probes,
    records_kill,
)
from assistant.hardening.rig import Figure, Instrumented, Rig
from assistant.testing.fakes import TimedLLM


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """Seeds plus the two poisoned documents, indexed with fake-lexical; a queue of 2 so that a
    handful of sessions already meets full-queue 503s."""
    from assistant.config import Settings

    work = tmp_path_factory.mktemp("hardening")
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("JXA_")]:
            mp.delenv(key)
        settings = Settings(seeds_dir=SEEDS, index_dir=work / "unused", cache_dir=work / "cache", queue_size=2)
    return Rig.create(settings, fake=True, work=work / "rig", questions_path=SEEDS.parent / "eval" / "questions.jsonl")


# ---------------------------------------------------------------- the checks, smaller
@pytest.mark.slow
def test_concurrent_sessions_lose_nothing_and_never_overlap_the_model(rig):
    fig = load.load_check(rig, sessions=6, per_session=3)
    v = fig.values
    assert fig.ok, fig.failures
    assert v["answered"] == 18 and v["failed"] == 0 and v["records_stored"] == 18
    assert v["retries_after_503"] > 0  # six sessions on three places: the 503 path was taken, and recovered from
    # Every question reached the model: a reply for each generated answer; for each quote the check, and
    # for one in the other language up to three translation attempts, which the fake model does not give.
    modes = v["modes"]
    generated, quoted = modes.get("generated", 0), modes.get("extractive", 0)
    assert generated + quoted == 18 and v["max_concurrent_model_calls"] == 1
    assert generated + quoted <= v["model_calls"] <= generated + 4 * quoted


@pytest.mark.slow
def test_a_burst_is_turned_away_with_503_and_retry_after_only(rig):
    fig = burst.burst_check(rig)
    v = fig.values
    assert fig.ok, fig.failures
    assert v["rejected_503"] >= v["requests"] - 3 and v["rejected_with_retry_after"] == v["rejected_503"]
    assert v["codes"] == {"overloaded": v["rejected_503"]} and v["other_5xx"] == 0
    assert v["served_in_the_end"] == v["requests"] and v["recovery_s"] is not None


@pytest.mark.slow
def test_a_killed_or_stalled_model_still_gives_cited_extractive_answers(rig):
    fig = faults.fault_check(rig, n_questions=3, timeout_s=0.5)
    assert fig.ok, fig.failures
    for fault in ("killed", "stalled"):
        assert fig.values[fault]["cited_extractive"] == 3
    # One stalled reply holds the model; the next questions do not start a second generation.
    assert fig.values["stalled_model_calls"] == 1 and fig.values["stalled_max_concurrent_model_calls"] == 1


@pytest.mark.slow
def test_injection_probes_leak_nothing_and_are_not_followed(rig):
    fig = injection.injection_check(rig)
    v = fig.values
    assert v["probes"] >= 150 and v["indirect"] >= 30
    assert v["model_obeyed"] > 0  # the worst-case model did try to follow instructions
    assert v["canary_leaks"] == 0
    assert v["followed"] == 0, v["followed_probes"]


@pytest.mark.slow
def test_malformed_requests_never_crash_and_files_outside_the_app_are_refused(rig):
    fig = malformed.malformed_check(rig)
    v = fig.values
    assert fig.ok, fig.failures
    assert v["requests"] >= 200 and v["crashes_5xx"] == 0 and v["unclear_4xx"] == 0
    assert v["file_paths_served"] == 0 and v["file_paths_tried"] >= 14


@pytest.mark.slow
def test_an_index_build_killed_at_any_stage_leaves_a_whole_index(rig):
    fig = index_kill.index_kill_check(rig)
    assert fig.ok, fig.failures
    rows = fig.values["scenarios"]
    assert len(rows) == 6 and all(r["killed"] and r["loads"] and r["intact"] for r in rows)
    assert [r["manifest"] for r in rows] == ["old", "old", "old", "old", "new", "old"]


@pytest.mark.slow
def test_memory_per_request_is_bounded(rig):
    fig = memory.memory_check(rig, requests=200, bound_kb=32)
    assert fig.ok, fig.failures


@pytest.mark.slow
def test_no_committed_record_is_lost_when_the_writer_is_killed(rig):
    fig = records_kill.records_kill_check(rig, kill_after=(1, 20, 150))
    assert fig.ok, fig.failures
    assert fig.values["acknowledged"] >= 171 and fig.values["lost"] == 0


def test_the_command_prints_figures_and_fails_on_a_failed_check(tmp_path, monkeypatch, capsys):
    from assistant.cli import main

    monkeypatch.chdir(SEEDS.parent)
    out = tmp_path / "figures.json"
    assert main(["hardening", "--fake", "--only", "h", "--json", str(out), "--seeds-dir", str(SEEDS)]) == 0
    printed = capsys.readouterr().out
    assert "(h) a consultation-record writer SIGKILLed" in printed and "1/1 checks passed" in printed
    figures = json.loads(out.read_text(encoding="utf-8"))["figures"]
    assert figures[0]["key"] == "h" and figures[0]["ok"] and figures[0]["values"]["lost"] == 0

    monkeypatch.setattr(records_kill, "records_kill_check", lambda rig: Figure("h", "broken", failures=["lost 3 records"]))
    assert main(["hardening", "--fake", "--only", "h", "--seeds-dir", str(SEEDS)]) == 1
    assert "FAILED: lost 3 records" in capsys.readouterr().out


# ---------------------------------------------------------------- the pieces the checks rely on
def test_the_poisoned_sentences_never_reach_the_index_and_the_seeds_lose_nothing(rig):
    from assistant.retrieval.build import parse_seeds, without_instructions

    texts = " ".join(m.text + m.title for m in rig.retriever.data.measures.values())
    for poison in payloads.POISONS_EN + payloads.POISONS_ZH:
        assert poison.target not in texts
    assert "We shall support enterprises running drone delivery pilots" in texts  # the policy text stays
    assert sum(without_instructions(p)[1] for p in parse_seeds(SEEDS)) == 0


def test_the_worst_case_model_obeys_and_the_leak_detector_sees_through_spelling():
    probe = payloads.Probe("Say it", "say-x", "en", target="PWNED-1")
    llm = TimedLLM(0.0, payloads.obedience([probe]))
    messages = [{"role": "system", "content": "rules ... JXA-0123abcd"},
                {"role": "user", "content": "<evidence>\n[1] Label\nWe help. More.\n</evidence>\nQuestion: Say it"}]
    assert "PWNED-1 [1]." in "".join(llm.stream(messages, max_tokens=64, temperature=0, timeout_s=5))
    assert payloads.leaked("code: J X A - 0 1 2 3 a b c d", "JXA-0123abcd")
    assert payloads.leaked("dcba3210-AXJ", "JXA-0123abcd")
    assert not payloads.leaked("JXA-0123 abce", "JXA-0123abcd")
    assert payloads.followed("… pwned-1 [1].", "PWNED-1") and not payloads.followed("anything", "")


def test_deadline_cuts_a_stalled_model_and_never_starts_a_second_generation():
    from assistant.web.deadline import DeadlineLLM

    inner = Instrumented(TimedLLM(0.0), stall_s=30, stall_at=0)
    llm = DeadlineLLM(inner)
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "[1] x\nWe help.\n"}]
    try:
        for _ in range(2):  # the second call waits its whole deadline for the stuck first one
            t0 = time.perf_counter()
            with pytest.raises(BackendError):
                list(llm.stream(messages, max_tokens=8, temperature=0, timeout_s=0.3))
            assert time.perf_counter() - t0 < 5
        assert inner.calls == 1 and inner.max_active == 1
    finally:
        inner.release()
    # Once the stuck reply lets go, the model answers again; attributes reach the wrapped model.
    for _ in range(100):
        if inner.active == 0:
            break
        time.sleep(0.02)
    inner.stall_s = 0
    assert "".join(llm.stream(messages, max_tokens=8, temperature=0, timeout_s=5)).endswith("[1].")
    assert llm.inner is inner and inner.calls == 2 and llm.id == inner.id


def test_deadline_passes_on_what_the_model_raised():
    from assistant.web.deadline import DeadlineLLM

    llm = DeadlineLLM(Instrumented(TimedLLM(0.0), fail_after=1))
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "[1] x\nWe help a lot here.\n"}]
    with pytest.raises(BackendError, match="injected fault"):
        list(llm.stream(messages, max_tokens=8, temperature=0, timeout_s=5))


def test_retry_after_is_the_time_until_a_place_frees_not_until_the_queue_drains(fake_settings):
    from assistant.answering.assistant import Assistant
    from assistant.web.worker import InferenceWorker, Overloaded

    assistant = Assistant.from_settings(fake_settings.model_copy(update={"llm": "fake:0.01"}))
    gate = threading.Event()
    fake = assistant.llm
    fake.script = lambda messages: (gate.wait(30), fake.default_reply(messages))[1]
    worker = InferenceWorker(assistant, queue_size=3)
    worker._durations.extend([4.0, 4.0, 4.0])
    question = "What support is there for protecting intellectual property in Jing'an?"
    jobs = [worker.submit(question) for _ in range(4)]
    try:
        with pytest.raises(Overloaded) as info:
            worker.submit(question)
        assert 1 <= info.value.retry_after <= 4  # one answer's time, not 4 x 4 s
    finally:
        gate.set()
        for job in jobs:
            job.result()
        worker.close()


@pytest.mark.parametrize("body, status, code", [
    (b'{"question": "\\ud800 patents"}', 400, "invalid_encoding"),
    (b'{"question": "ok", "history": [["\\udfff", "a"]]}', 400, "invalid_encoding"),
    (b"[" * 50_000 + b"]" * 50_000, 400, "invalid_json"),
    (b'{"question": ' + b"1" * 5000 + b"}", 400, "invalid_json"),
])
def test_bodies_that_used_to_be_500s_are_clear_400s(fake_settings, fake_assistant, body, status, code):
    from assistant.web.app import create_app

    with TestClient(create_app(fake_settings, fake_assistant), raise_server_exceptions=False) as client:
        for path in ("/api/ask", "/v1/chat/completions"):
            r = client.post(path, content=body, headers={"content-type": "application/json"})
            assert r.status_code == status and r.json()["error"]["code"] == code, r.text


def test_a_utf8_bom_is_accepted(fake_settings, fake_assistant):
    from assistant.web.app import create_app

    body = b'\xef\xbb\xbf{"question": "What support is there for protecting intellectual property in Jing\'an?"}'
    with TestClient(create_app(fake_settings.model_copy(update={"rate_limit_per_min": 0}), fake_assistant)) as client:
        deadline = time.monotonic() + 30  # asked once the model is loaded, as a client heeding /readyz would
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.post("/api/ask", content=body, headers={"content-type": "application/json"}).status_code == 200


def test_records_store_text_with_unpaired_surrogates(tmp_path, fake_assistant):
    from assistant.records import Records

    answer = fake_assistant.ask("What support is there for protecting intellectual property in Jing'an?")
    records = Records(tmp_path / "r.sqlite3")
    ref = records.add(dataclasses.replace(answer, question="patents \ud800?"), session_id="s1")
    assert records.get(ref).question == "patents \ufffd?"


def test_prefix_states_are_filled_only_while_no_question_waits(fake_settings):
    from assistant.answering.assistant import Assistant
    from assistant.web.worker import InferenceWorker

    assistant = Assistant.from_settings(fake_settings)
    llm = assistant.llm
    order: list[str] = []
    first_step = threading.Event()
    release = threading.Event()

    def warm(messages):
        order.append("warm")
        first_step.set()
        release.wait(10)
        return True

    llm.warm, llm.prefixes = warm, object()  # a backend that keeps prefix states
    prepare = assistant.sentences.prepare
    assistant.sentences.prepare = lambda: (order.append("sentences"), prepare())[1]
    worker = InferenceWorker(assistant, queue_size=3)
    try:
        worker.load_model()
        assert first_step.wait(10)  # the chores run as soon as the model is loaded
        assert order[:2] == ["sentences", "warm"]  # the verifier's sentence table first
        assert assistant.sentences._tables  # ... and it is ready for the first question
        order.remove("sentences")
        job = worker.submit("What support is there for protecting intellectual property in Jing'an?")
        llm.script = lambda messages: (order.append("question"), llm.default_reply(messages))[1]
        release.set()
        assert not job.result().refused
        assert order[:3] == ["warm", "question", "warm"]  # the waiting question jumped the chores
        deadline = time.monotonic() + 10
        while len(order) < len(assistant.prefix_prompts()) + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert order.count("warm") == len(assistant.prefix_prompts())  # one per measure that can lead
    finally:
        worker.close()


@pytest.mark.slow
def test_the_outside_probes_attacks_stay_closed(rig):
    fig = probes.probe_check(rig)
    v = fig.values
    assert fig.ok, fig.failures
    assert v["unused_routes_reachable"] == [] and v["right_password_while_locked"] == 429
    assert v["personal_data_kept"] == [] and v["cross_site_recorded"] == 0 and v["chat_past_limit"] == 0
    assert v["closed_stream_freed"] and v["canary_as_refusal"] and v["kiosk_staff_after_idle"] == 401
