"""Consultation records: every question and its answer in SQLite, personal data redacted first.

One table, `consultations`, versioned by `PRAGMA user_version` and migrated forward on open. The
database runs in WAL mode so the insights page can read while the server writes. One connection
is shared behind a lock: writes are a few per minute, and one writer is what SQLite wants anyway.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .types import Answer

log = logging.getLogger(__name__)

# Order matters: an 18-character ID number contains 11-digit runs a phone pattern would take.
_REDACTIONS: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"), "[email]"),
    (re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])"), "[id]"),
    (re.compile(r"(?<!\d)(?:(?:\+|00)?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)"), "[phone]"),
)


_SURROGATE = re.compile("[\ud800-\udfff]")


def redact(text: str | None) -> str:
    """Replace mainland mobile numbers, resident ID numbers and e-mail addresses.

    Example:
        >>> redact("call 13812345678 or mail li@example.cn, ID 11010519491231002X")
        'call [phone] or mail [email], ID [id]'
    """
    if not text:
        return text or ""
    # SQLite stores UTF-8, which cannot hold an unpaired surrogate (JSON can spell one: "\ud800");
    # one such character must not cost the whole record.
    text = _SURROGATE.sub("\ufffd", text)
    for pattern, placeholder in _REDACTIONS:
        text = pattern.sub(placeholder, text)
    return text


# Each entry moves the schema up one version; never edit an entry once released, append a new one.
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


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


class Records:
    """The consultation log.

    Args:
        path: the SQLite file (created with its folder if missing).

    Example:
        >>> records = Records(Path("var/consultations.sqlite3"))
        >>> ref = records.add(answer, session_id="a1b2c3", channel="web")
        >>> records.set_feedback(ref, +1, "clear and to the point")
        True
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._migrate()

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
    def add(self, answer: Answer, *, session_id: str, channel: str = "web", extra_timings: dict | None = None,
            created_at: datetime | None = None) -> str:
        """Store one answered (or refused) question, redacted. Returns the record's reference."""
        ref = secrets.token_hex(8)
        timings = dict(answer.timings) | (extra_timings or {})
        citations = [{"n": c.n, "measure_id": c.measure.measure_id, "label": c.measure.label,
                      "doc_id": c.document.doc_id, "expired": c.expired} for c in answer.citations]
        row = {
            "ref": ref,
            "created_at": _iso(created_at or _now()),
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
        cols = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        with self._lock:
            self._db.execute(f"INSERT INTO consultations ({cols}) VALUES ({marks})", row)
        return ref

    def set_feedback(self, ref: str, rating: int, comment: str | None = None) -> bool:
        """Thumbs up (+1) or down (-1), with an optional comment; False if no such record."""
        if rating not in (-1, 1):
            raise ValueError("rating must be +1 or -1")
        comment = redact(comment.strip())[:2000] if comment and comment.strip() else None
        with self._lock:
            if comment is None:  # a second click on the thumb keeps a comment given earlier
                cur = self._db.execute("UPDATE consultations SET feedback = ?, feedback_at = ? WHERE ref = ?",
                                       (rating, _iso(_now()), ref))
            else:
                cur = self._db.execute("UPDATE consultations SET feedback = ?, feedback_comment = ?, "
                                       "feedback_at = ? WHERE ref = ?", (rating, comment, _iso(_now()), ref))
        return cur.rowcount == 1

    def set_comment(self, ref: str, comment: str) -> bool:
        comment = redact(comment.strip())[:2000]
        with self._lock:
            cur = self._db.execute("UPDATE consultations SET feedback_comment = ?, feedback_at = ? WHERE ref = ?",
                                   (comment or None, _iso(_now()), ref))
        return cur.rowcount == 1

    def purge(self, older_than_days: int, *, now: datetime | None = None) -> int:
        """Delete records older than N days (0 keeps everything). Returns how many were deleted."""
        if older_than_days <= 0:
            return 0
        cutoff = _iso((now or _now()) - timedelta(days=older_than_days))
        with self._lock:
            cur = self._db.execute("DELETE FROM consultations WHERE created_at < ?", (cutoff,))
        if cur.rowcount:
            log.info("deleted %d consultation records older than %d days", cur.rowcount, older_than_days)
        return cur.rowcount

    # ---------------------------------------------------------------- reads
    def get(self, ref: str) -> Record | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM consultations WHERE ref = ?", (ref,)).fetchone()
        return self._record(row) if row else None

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
            args = (_iso(since),)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created_at, id", args).fetchall()
        for row in rows:
            yield self._record(row)

    @staticmethod
    def _record(row: sqlite3.Row) -> Record:
        return Record(
            id=row["id"], ref=row["ref"], created_at=datetime.fromisoformat(row["created_at"]),
            session_id=row["session_id"], channel=row["channel"], question=row["question"],
            rewritten_query=row["rewritten_query"], language=row["language"], answer=row["answer"],
            citations=json.loads(row["citations"]), refused=bool(row["refused"]), notice=row["notice"], reason=row["reason"],
            mode=row["mode"], total_ms=row["total_ms"], timings=json.loads(row["timings"]),
            feedback=row["feedback"], feedback_comment=row["feedback_comment"])

    def close(self) -> None:
        with self._lock:
            self._db.close()
