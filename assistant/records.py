"""Consultation records: every question and its answer, personal data redacted first
(`privacy.redact`).

Two stores behind one interface (`RecordStore`): SQLite, the default, a file beside one server; and
PostgreSQL (records_postgres.py), shared by several app replicas, selected by `JXA_DB_URL`. Both
hold the same table, `consultations`, built by the same numbered migrations, and both store exactly
the row `consultation_row` makes, so redaction happens once, before either sees the text.

The SQLite file runs in WAL mode so the insights page can read while the server writes. One
connection is shared behind a lock: writes are a few per minute, and one writer is what SQLite wants.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

from .privacy import private_file, redact
from .types import Answer

log = logging.getLogger(__name__)

# Each entry moves the schema up one version (records_postgres.py has the same entries in its
# dialect, one for one); never edit an entry once released, append a new one.
MIGRATIONS: tuple[str, ...] = (
    # 1: the consultation log
    """
    CREATE TABLE consultations (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        session_id TEXT NOT NULL,
        question TEXT NOT NULL,
        rewritten_query TEXT NOT NULL DEFAULT '',
        language TEXT NOT NULL DEFAULT '',
        answer TEXT NOT NULL DEFAULT '',
        citations TEXT NOT NULL DEFAULT '[]',
        refused INTEGER NOT NULL DEFAULT 0,
        mode TEXT NOT NULL DEFAULT '',
        timings TEXT NOT NULL DEFAULT '{}',
        feedback INTEGER CHECK (feedback IN (-1, 1)),
        feedback_comment TEXT
    );
    CREATE INDEX consultations_created ON consultations(created_at);
    """,
    # 2: where the question came from, why a refusal happened, latency as a column for percentiles,
    # and an unguessable reference so feedback can be given without exposing row ids
    """
    ALTER TABLE consultations ADD COLUMN channel TEXT NOT NULL DEFAULT 'web';
    ALTER TABLE consultations ADD COLUMN notice TEXT NOT NULL DEFAULT '';
    ALTER TABLE consultations ADD COLUMN total_ms REAL;
    ALTER TABLE consultations ADD COLUMN ref TEXT;
    ALTER TABLE consultations ADD COLUMN feedback_at TEXT;
    UPDATE consultations SET ref = lower(hex(randomblob(8))) WHERE ref IS NULL;
    UPDATE consultations SET total_ms = json_extract(timings, '$.total_ms') WHERE total_ms IS NULL;
    CREATE UNIQUE INDEX consultations_ref ON consultations(ref);
    """,
    # 3: a refusal's reason in its own column; `notice` keeps only a sentence shown to the user
    """
    ALTER TABLE consultations ADD COLUMN reason TEXT NOT NULL DEFAULT '';
    UPDATE consultations SET reason = notice, notice = '' WHERE refused = 1;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class Record:
    """One stored consultation, as the insights read it."""

    id: int
    ref: str
    created_at: datetime
    session_id: str
    channel: str
    question: str
    rewritten_query: str
    language: str
    answer: str
    citations: list[dict]
    refused: bool
    notice: str
    reason: str
    mode: str
    total_ms: float | None
    timings: dict
    feedback: int | None
    feedback_comment: str | None


@runtime_checkable
class RecordStore(Protocol):
    """What the server, the insights and the CLI ask of a consultation log."""

    @property
    def version(self) -> int: ...

    def add(self, answer: Answer, *, session_id: str, channel: str = "web", extra_timings: dict | None = None,
            created_at: datetime | None = None) -> str: ...

    def add_health_check(self, check, *, session_id: str, channel: str = "web", total_ms: float | None = None,
                         created_at: datetime | None = None) -> str: ...

    def set_feedback(self, ref: str, rating: int, comment: str | None = None) -> bool: ...

    def set_comment(self, ref: str, comment: str) -> bool: ...

    def purge(self, older_than_days: int, *, now: datetime | None = None) -> int: ...

    def get(self, ref: str) -> Record | None: ...

    def count(self) -> int: ...

    def iter(self, since: datetime | None = None) -> Iterator[Record]: ...

    def close(self) -> None: ...


def _now() -> datetime:
    return datetime.now(UTC)


def iso(t: datetime) -> str:
    """Timestamps are stored as UTC ISO text in both stores, so they sort as strings."""
    return t.astimezone(UTC).isoformat(timespec="seconds")


def consultation_row(answer: Answer, *, session_id: str, channel: str, extra_timings: dict | None,
                     created_at: datetime | None) -> dict:
    """The row either store inserts for one answer: every free text redacted, a fresh reference."""
    timings = dict(answer.timings) | (extra_timings or {})
    citations = [{"n": c.n, "measure_id": c.measure.measure_id, "label": c.measure.label,
                  "doc_id": c.document.doc_id, "expired": c.expired} for c in answer.citations]
    return {
        "ref": secrets.token_hex(8),
        "created_at": iso(created_at or _now()),
        "session_id": session_id[:64],
        "channel": channel,
        "question": redact(answer.question),
        "rewritten_query": redact(answer.rewritten_query),
        "language": answer.language,
        "answer": redact(answer.answer),
        "citations": json.dumps(citations, ensure_ascii=False),
        "refused": int(answer.refused),
        "notice": answer.notice,
        "reason": answer.reason,
        "mode": answer.mode,
        "timings": json.dumps(timings),
        "total_ms": timings.get("total_ms"),
    }


def health_check_row(check, *, session_id: str, channel: str, total_ms: float | None,
                     created_at: datetime | None) -> dict:
    """The row either store inserts for one policy health check: the profile (redacted) as what was
    asked, the measures that apply or may apply as its citations; `mode` is "health_check", and a
    check where nothing applies is recorded as refused, so insights can show it as a gap."""
    from .matching.match import APPLIES, MAY_APPLY

    p = check.profile
    asked = "; ".join(f"{k}: {v}" for k, v in (
        ("district", p.district), ("industry", p.industry), ("employees", p.employees),
        ("founded", p.founded_year), ("qualifications", ", ".join(p.qualifications) if p.qualifications else None),
        ("needs", p.needs)) if v is not None)
    applies, maybe = check.level(APPLIES), check.level(MAY_APPLY)
    citations = [{"n": n, "measure_id": r.measure.measure_id, "label": r.measure.label, "doc_id": r.document.doc_id,
                  "expired": r.expired, "level": r.level} for n, r in enumerate(applies + maybe, 1)]
    return {
        "ref": secrets.token_hex(8),
        "created_at": iso(created_at or _now()),
        "session_id": session_id[:64],
        "channel": channel,
        "question": redact(asked or "(empty profile)"),
        "rewritten_query": "",
        "language": p.lang,
        "answer": f"applies {len(applies)}, may apply {len(maybe)}",
        "citations": json.dumps(citations, ensure_ascii=False),
        "refused": int(not applies),
        "notice": "",
        "reason": "health_check_empty" if not applies and not maybe else ("health_check_thin" if not applies else ""),
        "mode": "health_check",
        "timings": json.dumps({"total_ms": total_ms} if total_ms is not None else {}),
        "total_ms": total_ms,
    }


def feedback_comment(comment: str | None) -> str | None:
    """A feedback comment as stored: redacted, bounded, None when blank."""
    return redact(comment.strip())[:2000] if comment and comment.strip() else None


def record_from_row(row: Mapping) -> Record:
    return Record(
        id=row["id"], ref=row["ref"], created_at=datetime.fromisoformat(row["created_at"]),
        session_id=row["session_id"], channel=row["channel"], question=row["question"],
        rewritten_query=row["rewritten_query"], language=row["language"], answer=row["answer"],
        citations=json.loads(row["citations"]), refused=bool(row["refused"]), notice=row["notice"],
        reason=row["reason"],
        mode=row["mode"], total_ms=row["total_ms"], timings=json.loads(row["timings"]),
        feedback=row["feedback"], feedback_comment=row["feedback_comment"])


class RowWriter:
    """What both stores write the same way: a row made here (redacted), inserted by the store."""

    def insert(self, row: dict) -> str:
        raise NotImplementedError

    def add(self, answer: Answer, *, session_id: str, channel: str = "web", extra_timings: dict | None = None,
            created_at: datetime | None = None) -> str:
        """Store one answered (or refused) question, redacted. Returns the record's reference."""
        return self.insert(consultation_row(answer, session_id=session_id, channel=channel,
                                            extra_timings=extra_timings, created_at=created_at))

    def add_health_check(self, check, *, session_id: str, channel: str = "web", total_ms: float | None = None,
                         created_at: datetime | None = None) -> str:
        """Store one policy health check like a question (see `health_check_row`)."""
        return self.insert(health_check_row(check, session_id=session_id, channel=channel, total_ms=total_ms,
                                            created_at=created_at))


class SQLiteRecords(RowWriter):
    """The consultation log in one SQLite file (the default store).

    Args:
        path: the SQLite file (created with its folder if missing).

    Example:
        >>> records = SQLiteRecords(Path("var/consultations.sqlite3"))
        >>> ref = records.add(answer, session_id="a1b2c3", channel="web")
        >>> records.set_feedback(ref, +1, "clear and to the point")
        True
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        private_file(self.path)  # the records hold what the public asked: owner-only, also -wal and -shm
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._migrate()

    def __repr__(self) -> str:
        return f"SQLiteRecords({str(self.path)!r})"

    # ---------------------------------------------------------------- schema
    @property
    def version(self) -> int:
        with self._lock:
            return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        current = self._db.execute("PRAGMA user_version").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} has schema version {current}, newer than this program's "
                               f"{SCHEMA_VERSION}: upgrade the program or use another JXA_DB_PATH")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            # executescript commits on its own, so the version bump rides inside the same script
            # to keep a half-applied migration from being marked done.
            script = f"BEGIN;\n{MIGRATIONS[version - 1]}\nPRAGMA user_version = {version};\nCOMMIT;"
            try:
                self._db.executescript(script)
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            log.info("consultation records %s migrated to schema version %d", self.path, version)

    @property
    def journal_mode(self) -> str:
        with self._lock:
            return self._db.execute("PRAGMA journal_mode").fetchone()[0]

    # ---------------------------------------------------------------- writes
    def insert(self, row: dict) -> str:
        cols = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        with self._lock:
            self._db.execute(f"INSERT INTO consultations ({cols}) VALUES ({marks})", row)
        return row["ref"]

    def set_feedback(self, ref: str, rating: int, comment: str | None = None) -> bool:
        """Thumbs up (+1) or down (-1), with an optional comment; False if no such record."""
        if rating not in (-1, 1):
            raise ValueError("rating must be +1 or -1")
        comment = feedback_comment(comment)
        with self._lock:
            if comment is None:  # a second click on the thumb keeps a comment given earlier
                cur = self._db.execute("UPDATE consultations SET feedback = ?, feedback_at = ? WHERE ref = ?",
                                       (rating, iso(_now()), ref))
            else:
                cur = self._db.execute("UPDATE consultations SET feedback = ?, feedback_comment = ?, "
                                       "feedback_at = ? WHERE ref = ?", (rating, comment, iso(_now()), ref))
        return cur.rowcount == 1

    def set_comment(self, ref: str, comment: str) -> bool:
        with self._lock:
            cur = self._db.execute("UPDATE consultations SET feedback_comment = ?, feedback_at = ? WHERE ref = ?",
                                   (feedback_comment(comment), iso(_now()), ref))
        return cur.rowcount == 1

    def purge(self, older_than_days: int, *, now: datetime | None = None) -> int:
        """Delete records older than N days (0 keeps everything). Returns how many were deleted."""
        if older_than_days <= 0:
            return 0
        cutoff = iso((now or _now()) - timedelta(days=older_than_days))
        with self._lock:
            cur = self._db.execute("DELETE FROM consultations WHERE created_at < ?", (cutoff,))
        if cur.rowcount:
            log.info("deleted %d consultation records older than %d days", cur.rowcount, older_than_days)
        return cur.rowcount

    # ---------------------------------------------------------------- reads
    def get(self, ref: str) -> Record | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM consultations WHERE ref = ?", (ref,)).fetchone()
        return record_from_row(row) if row else None

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM consultations").fetchone()[0]

    def integrity_check(self) -> str:
        """SQLite's own verdict on the database file: "ok", or what is damaged."""
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    def iter(self, since: datetime | None = None) -> Iterator[Record]:
        """Records in time order, optionally only those since a moment."""
        query = "SELECT * FROM consultations"
        args: tuple = ()
        if since is not None:
            query += " WHERE created_at >= ?"
            args = (iso(since),)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created_at, id", args).fetchall()
        for row in rows:
            yield record_from_row(row)

    def close(self) -> None:
        with self._lock:
            self._db.close()


#: the default store, by its historical name
Records = SQLiteRecords
