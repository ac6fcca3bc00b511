"""Stored responses in SQLite (every worker of one host) or PostgreSQL (every replica).

One table, ``stored_responses``, keyed by ``(tenant, id)``; ``stored_at`` (Unix seconds)
and ``size`` (bytes of JSON) are indexed together, so expiry and the bounds never read
the conversations themselves. Each write, in one transaction: drop what expired, store
the entry, then trim the oldest entries past ``max_entries`` or ``max_bytes``. A read
ignores an expired row, so expiry holds even between writes. SQLite and PostgreSQL run
the same statements; only the connection and the column types differ.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from thrifty.server.responses_store import MAX_BYTES, MAX_ENTRIES, TTL_S
from thrifty.stores import postgres as pg
from thrifty.stores import sqlite as lite

__all__ = ["PostgresResponseStore", "SqliteResponseStore"]

#: How long a SQLite write waits for another worker's lock before the 503.
LOCK_TIMEOUT_S = 5.0
_WHAT = "response store"
_VERSIONS = "stored_responses_schema_version"
_MIGRATION_LOCK = 0x7468726966747933  # "thrifty3": apart from the ledger's and the keys'


def _migrations(real: str, integer: str, blob: str) -> list[tuple[str, ...]]:
    return [
        (
            f"""CREATE TABLE stored_responses (
                tenant TEXT NOT NULL, id TEXT NOT NULL, stored_at {real} NOT NULL,
                size {integer} NOT NULL, messages {blob} NOT NULL, PRIMARY KEY (tenant, id))""",
            "CREATE INDEX stored_responses_age ON stored_responses (stored_at, size)",
        )
    ]


_EXPIRE = "DELETE FROM stored_responses WHERE stored_at < ?"
_UPSERT = (
    "INSERT INTO stored_responses (tenant, id, stored_at, size, messages)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO UPDATE SET"
    " stored_at = excluded.stored_at, size = excluded.size, messages = excluded.messages"
)
# the newest entry that no longer fits: it and everything older go
_CUTOFF = (
    "SELECT stored_at FROM (SELECT stored_at, ROW_NUMBER() OVER newest AS n,"
    " SUM(size) OVER newest AS total FROM stored_responses"
    " WINDOW newest AS (ORDER BY stored_at DESC ROWS UNBOUNDED PRECEDING)) AS ranked"
    " WHERE n > ? OR total > ? LIMIT 1"
)
_TRIM = "DELETE FROM stored_responses WHERE stored_at <= ?"
_GET = "SELECT messages FROM stored_responses WHERE tenant = ? AND id = ? AND stored_at >= ?"

#: Runs one statement, returning its rows as tuples.
Run = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


class _SqlResponseStore:
    """What both databases share: the statements, expiry and trimming."""

    blocks = True

    def __init__(self, max_entries: int, ttl_s: float, max_bytes: int) -> None:
        self._max = max_entries
        self._ttl = ttl_s
        self._max_bytes = max_bytes

    def _write(self, work: Callable[[Run], None]) -> None:
        raise NotImplementedError

    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def put(self, tenant: str, response_id: str, messages: list[dict[str, Any]]) -> None:
        data = orjson.dumps(messages)
        if len(data) > self._max_bytes:
            return
        now = time.time()

        def work(run: Run) -> None:
            run(_EXPIRE, (now - self._ttl,))
            run(_UPSERT, (tenant, response_id, now, len(data), data))
            cutoff = run(_CUTOFF, (self._max, self._max_bytes))
            if cutoff:
                run(_TRIM, (cutoff[0][0],))

        self._write(work)

    def get(self, tenant: str, response_id: str) -> list[dict[str, Any]] | None:
        rows = self._read(_GET, (tenant, response_id, time.time() - self._ttl))
        if not rows:
            return None
        messages: list[dict[str, Any]] = orjson.loads(rows[0][0])
        return messages


class SqliteResponseStore(_SqlResponseStore):
    """Responses in a SQLite file every worker of the host opens (WAL: reads never wait)."""

    def __init__(
        self,
        path: str | Path,
        max_entries: int = MAX_ENTRIES,
        ttl_s: float = TTL_S,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        super().__init__(max_entries, ttl_s, max_bytes)
        self.path = Path(path)
        self._conn = lite.connect(self.path, timeout_s=LOCK_TIMEOUT_S)
        lite.migrate(self._conn, _VERSIONS, _migrations("REAL", "INTEGER", "BLOB"))
        self._lock = threading.Lock()

    def _run(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(sql, params).fetchall())

    def _write(self, work: Callable[[Run], None]) -> None:
        with self._lock, self._locked():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                work(self._run)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._lock, self._locked():
            return self._run(sql, params)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """SQLite giving up on another worker's lock is the 503 a client may retry."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if not lite.is_locked(exc):
                raise
            raise lite.locked_store(_WHAT, exc, path=str(self.path)) from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresResponseStore(_SqlResponseStore):
    """Responses in PostgreSQL (the ledger's database): every replica sees them."""

    def __init__(
        self,
        dsn: str,
        max_entries: int = MAX_ENTRIES,
        ttl_s: float = TTL_S,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        super().__init__(max_entries, ttl_s, max_bytes)
        self._link = pg.Reconnecting(dsn, _WHAT, self._migrate)

    @staticmethod
    def _migrate(conn: Any) -> None:
        pg.migrate(
            conn, lock_id=_MIGRATION_LOCK, version_table=_VERSIONS,
            migrations=_migrations("DOUBLE PRECISION", "BIGINT", "BYTEA"),
        )  # fmt: skip

    @staticmethod
    def _runner(conn: Any) -> Run:
        def run(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            cursor = conn.execute(sql.replace("?", "%s"), params)
            return [tuple(row.values()) for row in cursor.fetchall()] if cursor.description else []

        return run

    def _write(self, work: Callable[[Run], None]) -> None:
        def transaction(conn: Any) -> None:
            with conn.transaction():
                work(self._runner(conn))

        self._link.run(transaction)

    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._link.run(lambda conn: self._runner(conn)(sql, params))

    def close(self) -> None:
        self._link.close()
