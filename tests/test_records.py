"""Consultation records: the same tests against real SQLite (WAL) and a real PostgreSQL server;
redaction, migrations, retention, feedback, concurrent writers from two replicas."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest

from assistant import records_postgres
from assistant.record_stores import open_records
from assistant.records import MIGRATIONS, SCHEMA_VERSION, Records, RecordStore, SQLiteRecords, redact
from assistant.records_postgres import PostgresRecords

STORES = ("sqlite", "postgres")


@pytest.fixture(params=STORES)
def store_url(request, tmp_path):
    """Where a store lives: a SQLite file, or a fresh database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return tmp_path / "var" / "records.sqlite3"
    return request.getfixturevalue("postgres_url")


def open_store(where) -> RecordStore:
    return PostgresRecords(where) if isinstance(where, str) else SQLiteRecords(where)


@pytest.fixture
def records(store_url):
    r = open_store(store_url)
    yield r
    r.close()


def raw_rows(where, sql: str) -> list[tuple]:
    """Rows read past the store, straight from its database."""
    if not isinstance(where, str):
        with contextlib.closing(sqlite3.connect(where)) as db:
            return db.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(where) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def answers(fake_index_dir):
    """A few real answers from the fake assistant: one grounded, one refused."""
    from conftest import SEEDS

    from assistant.answering.assistant import Assistant
    from assistant.config import Settings

    settings = Settings(seeds_dir=SEEDS, index_dir=fake_index_dir, embedder="fake-hash", llm="fake",
                        today="2026-11-26")
    assistant = Assistant.from_settings(settings)
    return {
        "answered": assistant.ask("What support is there for protecting intellectual property in Jing'an?"),
        "refused": assistant.ask("What is the best recipe for mooncakes?"),
        "personal": assistant.ask("My phone is 13812345678 and my ID is 11010519491231002X, mail li.wei@example.cn "
                                  "- what financing support can my company get?"),
    }


@pytest.mark.parametrize("text, expected", [
    ("call me on 13812345678", "call me on [phone]"),
    ("电话13912345678谢谢", "电话[phone]谢谢"),
    ("+86 138 1234 5678 or 0086-13812345678", "[phone] or [phone]"),
    ("ID 11010519491231002X ok", "ID [id] ok"),
    ("身份证号110105194912310021。", "身份证号[id]。"),
    ("write to li.wei+tax@example.com.cn please", "write to [email] please"),
    ("order 12345678901234567890 stays", "order 12345678901234567890 stays"),  # 20 digits: not an ID
    ("hotline 12345 and the year 2026", "hotline 12345 and the year 2026"),
    ("12812345678 is not a mobile number", "12812345678 is not a mobile number"),
])
def test_redact(text, expected):
    assert redact(text) == expected


def test_new_database_is_at_latest_schema(records):
    assert isinstance(records, RecordStore)
    assert records.version == SCHEMA_VERSION and records.count() == 0


def test_sqlite_is_wal(tmp_path):
    records = Records(tmp_path / "r.sqlite3")
    assert records.journal_mode == "wal"
    # A second process sees the same file in WAL mode too.
    other = sqlite3.connect(records.path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()
    records.close()


def _sqlite_columns(path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [(name, decl.upper(), bool(notnull)) for _, name, decl, notnull, _, _
                in db.execute("PRAGMA table_info(consultations)")]


def _postgres_columns(url) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                            "WHERE table_name = 'consultations' ORDER BY ordinal_position").fetchall()
    kind = {"text": "TEXT", "integer": "INTEGER", "bigint": "INTEGER", "double precision": "REAL"}
    return [(name, kind[t], nullable == "NO") for name, t, nullable in rows]


def test_both_stores_have_the_same_schema(tmp_path, postgres_url):
    SQLiteRecords(tmp_path / "s.sqlite3").close()
    PostgresRecords(postgres_url).close()
    sqlite_cols = _sqlite_columns(tmp_path / "s.sqlite3")
    assert len(sqlite_cols) == 19
    # the id is an identity column in PostgreSQL, implicitly NOT NULL; SQLite reports its rowid alias as nullable
    assert [c if c[0] != "id" else (c[0], c[1], True) for c in sqlite_cols] == _postgres_columns(postgres_url)
    assert len(records_postgres.MIGRATIONS) == len(MIGRATIONS) == SCHEMA_VERSION


def test_settings_choose_the_store(tmp_path, postgres_url):
    from pydantic import ValidationError

    from assistant.config import Settings

    default = open_records(Settings(db_path=tmp_path / "d.sqlite3"))
    assert isinstance(default, SQLiteRecords) and (tmp_path / "d.sqlite3").exists()
    default.close()
    shared = open_records(Settings(db_path=tmp_path / "unused.sqlite3", db_url=postgres_url))
    assert isinstance(shared, PostgresRecords) and not (tmp_path / "unused.sqlite3").exists()
    shared.close()
    with pytest.raises(ValidationError, match="postgresql://"):
        Settings(db_url="mysql://x@y/z")


def test_unreachable_database_names_the_setting(postgres_cluster):
    from assistant.errors import ConfigError
    from assistant.serving.postgres import free_port

    with pytest.raises(ConfigError, match=r"JXA_DB_URL") as err:
        PostgresRecords(f"postgresql://jxa:s3cret@127.0.0.1:{free_port()}/none", connect_timeout_s=2)
    assert "s3cret" not in str(err.value) and "***" in str(err.value)


def test_add_stores_everything_redacted(records, store_url, answers):
    ref = records.add(answers["personal"], session_id="sess-0001", channel="api", extra_timings={"queue_ms": 12.5})
    rec = records.get(ref)
    assert rec is not None
    assert "13812345678" not in rec.question and "[phone]" in rec.question
    assert "[id]" in rec.question and "[email]" in rec.question
    assert "11010519491231002X" not in rec.rewritten_query
    assert rec.session_id == "sess-0001" and rec.channel == "api"
    assert rec.language == "en"
    assert rec.timings["queue_ms"] == 12.5 and rec.total_ms == answers["personal"].timings["total_ms"]
    raw = raw_rows(store_url, "SELECT question, rewritten_query, answer FROM consultations")
    assert raw and all("13812345678" not in cell and "li.wei@" not in cell for row in raw for cell in row)


def test_answer_and_refusal_fields(records, answers):
    ok = records.get(records.add(answers["answered"], session_id="s1"))
    no = records.get(records.add(answers["refused"], session_id="s1"))
    assert ok.refused is False and ok.mode == answers["answered"].mode
    assert [c["measure_id"] for c in ok.citations] == [c.measure.measure_id for c in answers["answered"].citations]
    assert ok.citations and "label" in ok.citations[0]
    assert no.refused is True and no.citations == [] and no.reason == answers["refused"].reason
    assert no.answer == answers["refused"].answer


def test_feedback_and_comment(records, answers):
    ref = records.add(answers["answered"], session_id="s1")
    assert records.get(ref).feedback is None
    assert records.set_feedback(ref, 1)
    assert records.get(ref).feedback == 1
    assert records.set_comment(ref, "Clear. Call me on 13912345678")
    rec = records.get(ref)
    assert rec.feedback_comment == "Clear. Call me on [phone]"
    assert records.set_feedback(ref, -1)  # changing the thumb keeps the comment
    rec = records.get(ref)
    assert rec.feedback == -1 and rec.feedback_comment == "Clear. Call me on [phone]"
    assert not records.set_feedback("no-such-ref", 1)
    with pytest.raises(ValueError):
        records.set_feedback(ref, 5)


def test_retention_deletes_only_old_records(records, answers):
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    old = records.add(answers["answered"], session_id="s", created_at=now - timedelta(days=200))
    edge = records.add(answers["answered"], session_id="s", created_at=now - timedelta(days=179))
    new = records.add(answers["refused"], session_id="s", created_at=now - timedelta(hours=1))
    assert records.purge(0, now=now) == 0  # 0 keeps everything
    assert records.purge(180, now=now) == 1
    assert records.get(old) is None
    assert records.get(edge) is not None and records.get(new) is not None


def test_iter_since(records, answers):
    now = datetime.now(UTC)
    records.add(answers["answered"], session_id="s", created_at=now - timedelta(days=40))
    records.add(answers["refused"], session_id="s", created_at=now - timedelta(days=2))
    assert len(list(records.iter())) == 2
    recent = list(records.iter(since=now - timedelta(days=30)))
    assert len(recent) == 1 and recent[0].refused


def test_migration_3_moves_a_refusal_reason_out_of_the_notice(tmp_path):
    path = tmp_path / "v2.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + MIGRATIONS[1] + "\nPRAGMA user_version = 2;")
    for refused, notice in ((1, "off_topic"), (0, "The language model is unavailable right now.")):
        db.execute("INSERT INTO consultations (created_at, session_id, question, refused, notice, ref) "
                   "VALUES ('2026-11-01T10:00:00+00:00', 's', 'q', ?, ?, lower(hex(randomblob(8))))", (refused, notice))
    db.commit()
    db.close()
    records = Records(path)
    refusal, quote = list(records.iter())
    assert (refusal.reason, refusal.notice) == ("off_topic", "")
    assert (quote.reason, quote.notice) == ("", "The language model is unavailable right now.")
    records.close()


def test_migrates_a_version_1_database(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
    db.execute("INSERT INTO consultations (created_at, session_id, question, timings, refused) "
               "VALUES ('2026-11-01T10:00:00+00:00', 'old', 'an old question', '{\"total_ms\": 1234.5}', 1)")
    db.commit()
    db.close()
    records = Records(path)
    assert records.version == SCHEMA_VERSION
    (rec,) = list(records.iter())
    assert rec.question == "an old question" and rec.refused
    assert rec.channel == "web" and rec.total_ms == 1234.5  # backfilled by migration 2
    assert len(rec.ref) == 16
    assert records.set_feedback(rec.ref, 1)
    records.close()
    # Opening again applies nothing twice.
    again = Records(path)
    assert again.version == SCHEMA_VERSION and again.count() == 1
    again.close()


def test_migrates_a_version_1_postgres_database(postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for statement in records_postgres.MIGRATIONS[0].split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("CREATE TABLE jxa_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO jxa_schema VALUES (1)")
        conn.execute("INSERT INTO consultations (created_at, session_id, question, timings, refused) "
                     "VALUES ('2026-11-01T10:00:00+00:00', 'old', 'an old question', '{\"total_ms\": 1234.5}', 1)")
    records = PostgresRecords(postgres_url)
    assert records.version == SCHEMA_VERSION
    (rec,) = list(records.iter())
    assert rec.question == "an old question" and rec.refused
    assert rec.channel == "web" and rec.total_ms == 1234.5
    assert len(rec.ref) == 16
    assert records.set_feedback(rec.ref, 1)
    records.close()
    again = PostgresRecords(postgres_url)
    assert again.version == SCHEMA_VERSION and again.count() == 1
    again.close()


def test_replicas_starting_together_migrate_once(postgres_url):
    stores: list = []
    errors: list = []

    def start() -> None:
        try:
            stores.append(PostgresRecords(postgres_url))
        except Exception as exc:  # collected: a failed start is the bug under test
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(stores) == 4
    assert raw_rows(postgres_url, "SELECT version FROM jxa_schema") == [(SCHEMA_VERSION,)]
    for s in stores:
        s.close()


def test_postgres_refuses_a_newer_schema(postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE jxa_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO jxa_schema VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="newer"):
        PostgresRecords(postgres_url)


def test_refuses_a_newer_schema(tmp_path):
    path = tmp_path / "future.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="newer"):
        Records(path)


def test_two_replicas_writing_at_once_lose_nothing(store_url, answers):
    """Two stores on one database, as two app replicas hold them, each written by three threads."""
    replicas = [open_store(store_url), open_store(store_url)]
    refs: list[str] = []
    guard = threading.Lock()
    start = threading.Barrier(6)

    def write(n: int) -> None:
        store = replicas[n % 2]
        start.wait()
        for i in range(15):
            ref = store.add(answers["answered"], session_id=f"replica{n % 2}-t{n}")
            assert replicas[(n + 1) % 2].set_feedback(ref, 1 if i % 3 else -1)  # the other replica sees it
            with guard:
                refs.append(ref)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(refs) == 90 and len(set(refs)) == 90
    for store in replicas:  # each replica reads every row, whoever wrote it
        assert store.count() == 90
        assert {r.ref for r in store.iter()} == set(refs)
        assert sum(1 for r in store.iter() if r.feedback == -1) == 30
    for store in replicas:
        store.close()


def test_concurrent_writers(records, answers):
    refs: list[str] = []
    guard = threading.Lock()

    def write(n: int) -> None:
        for i in range(10):
            ref = records.add(answers["answered"], session_id=f"t{n}")
            records.set_feedback(ref, 1 if i % 2 else -1)
            with guard:
                refs.append(ref)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert records.count() == 60 and len(set(refs)) == 60
    assert sum(1 for r in records.iter() if r.feedback == 1) == 30
