"""The batch job store in one small SQLite file, shared by the gateway and ``thrifty batch``.

Each call opens its own connection (batch calls are rare, and the CLI and the gateway
may both write) in Python's transactional mode: ``with db:`` commits the call. No WAL:
a writer that holds the file locks readers out, and they wait up to the busy timeout.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from thrifty.stores.sqlite import connect, migrate

__all__ = ["MIGRATIONS", "SqliteJobStore"]

#: Written with ``IF NOT EXISTS`` before it was versioned: files from then migrate too.
MIGRATIONS: list[tuple[str, ...]] = [(
    """CREATE TABLE IF NOT EXISTS files (
        id TEXT PRIMARY KEY, key_id TEXT, provider TEXT NOT NULL, upstream_id TEXT NOT NULL,
        filename TEXT, purpose TEXT, bytes INTEGER, created_at INTEGER, models TEXT)""",
    """CREATE TABLE IF NOT EXISTS batches (
        id TEXT PRIMARY KEY, key_id TEXT, provider TEXT NOT NULL, upstream_id TEXT NOT NULL,
        input_file_id TEXT NOT NULL, created_at INTEGER, booked INTEGER NOT NULL DEFAULT 0,
        last TEXT)""",
    "CREATE INDEX IF NOT EXISTS batches_key ON batches(key_id, created_at)",
    # admission: each file's line estimates, each job's budget hold (governance/jobs.py)
    "CREATE TABLE IF NOT EXISTS file_lines (file_id TEXT PRIMARY KEY, lines TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS holds (
        batch_id TEXT PRIMARY KEY, hold TEXT NOT NULL, settled INTEGER NOT NULL DEFAULT 0)""",
)]


class SqliteJobStore:
    """A :class:`~thrifty.batching.stores.base.JobStore` in a SQLite file.

    >>> store = SqliteJobStore("thrifty-batches.db")  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        with closing(self._open(autocommit=True)) as db:
            migrate(db, "jobs_schema_version", MIGRATIONS)

    def _open(self, autocommit: bool) -> sqlite3.Connection:
        return connect(
            self.path, timeout_s=self.busy_timeout_s, wal=False, synchronous=None,
            autocommit=autocommit, named_rows=True,
        )  # fmt: skip

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation: committed, then closed."""
        with closing(self._open(autocommit=False)) as db, db:
            yield db

    def _one(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute(sql, params).fetchone()
        return dict(row) if row is not None else None

    def add_file(
        self,
        file_id: str,
        *,
        key_id: str | None,
        provider: str,
        upstream_id: str,
        filename: str,
        purpose: str,
        size: int,
        models: dict[str, str],
    ) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?)",
                (file_id, key_id, provider, upstream_id, filename, purpose, size,
                 int(time.time()), json.dumps(models)),
            )  # fmt: skip

    def file(self, file_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM files WHERE id = ?", (file_id,))
        if row is not None:
            row["models"] = json.loads(row["models"] or "{}")
        return row

    def file_by_upstream(self, provider: str, upstream_id: str) -> dict[str, Any] | None:
        row = self._one(
            "SELECT id FROM files WHERE provider = ? AND upstream_id = ?", (provider, upstream_id)
        )
        return self.file(row["id"]) if row else None

    def add_batch(
        self, batch_id: str, *, key_id: str | None, provider: str, upstream_id: str,
        input_file_id: str, last: dict[str, Any],
    ) -> None:  # fmt: skip
        with self._connect() as db:
            db.execute(
                "INSERT INTO batches VALUES (?,?,?,?,?,?,0,?)",
                (batch_id, key_id, provider, upstream_id, input_file_id, int(time.time()),
                 json.dumps(last)),
            )  # fmt: skip

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM batches WHERE id = ?", (batch_id,))
        if row is not None:
            row["last"] = json.loads(row["last"] or "{}")
        return row

    def update_batch(self, batch_id: str, last: dict[str, Any], *, booked: bool) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE batches SET last = ?, booked = MAX(booked, ?) WHERE id = ?",
                (json.dumps(last), int(booked), batch_id),
            )

    def batches(self, key_id: str | None, limit: int, after: str | None) -> list[dict[str, Any]]:
        """The caller's batches, newest first, after the batch ``after`` (a cursor)."""
        sql = "SELECT * FROM batches WHERE (? IS NULL OR key_id IS ?)"
        params: list[Any] = [key_id, key_id]
        if after:
            anchor = self.batch(after)
            if anchor is not None:
                sql += " AND (created_at, id) < (?, ?)"
                params += [anchor["created_at"], anchor["id"]]
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(limit)
        with self._connect() as db:
            rows = [dict(r) for r in db.execute(sql, params).fetchall()]
        for row in rows:
            row["last"] = json.loads(row["last"] or "{}")
        return rows

    def add_lines(self, file_id: str, lines: dict[str, list[Any]]) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO file_lines VALUES (?, ?)",
                       (file_id, json.dumps(lines)))  # fmt: skip

    def lines(self, file_id: str) -> dict[str, list[Any]] | None:
        row = self._one("SELECT lines FROM file_lines WHERE file_id = ?", (file_id,))
        return json.loads(row["lines"]) if row is not None else None

    def add_hold(self, batch_id: str, hold: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute("INSERT INTO holds VALUES (?, ?, 0)", (batch_id, json.dumps(hold)))

    def claim_hold(self, batch_id: str) -> dict[str, Any] | None:
        """The job's hold, to the one caller that settles it (None: none, or claimed)."""
        with self._connect() as db:
            row = db.execute(
                "UPDATE holds SET settled = 1 WHERE batch_id = ? AND settled = 0 RETURNING hold",
                (batch_id,),
            ).fetchone()
        return json.loads(row["hold"]) if row is not None else None
