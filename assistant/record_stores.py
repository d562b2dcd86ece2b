"""Which record store a deployment uses: PostgreSQL at `db_url` when set (shared by several app
replicas), else the SQLite file at `db_path`."""

from __future__ import annotations

from .records import RecordStore, SQLiteRecords


def open_records(settings) -> RecordStore:
    """The store the settings name."""
    url = settings.db_url.get_secret_value()
    if url:
        from .records_postgres import PostgresRecords  # psycopg is loaded only where PostgreSQL is used

        return PostgresRecords(url)
    return SQLiteRecords(settings.db_path)
