"""Stored responses in SQLite (every worker of one host) or PostgreSQL (every replica).

One table, ``stored_responses``, keyed by ``(tenant, id)`` and indexed by ``stored_at``
(Unix seconds), and a one-row table of running totals (entries, bytes), so the bounds are
checked without counting the table. Each write is one transaction that first locks the
totals row (writers of every worker and replica take turns: no deadlock), drops the
entry it replaces (and, at most every :data:`EXPIRE_EVERY_S`, what expired), stores the
entry and writes the new totals. Past
``max_entries`` or ``max_bytes`` it counts the table again (the totals stay right even
if rows were deleted by hand) and deletes the oldest entries down to :data:`TRIM_TO` of
both bounds, so trimming is one write in many, not every write. A read ignores an
expired row, so expiry holds between writes too. SQLite and PostgreSQL run the same
statements; only the connection and the column types differ.
"""

from __future__ import annotations

import math
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
            "CREATE INDEX stored_responses_age ON stored_responses (stored_at)",
            f"""CREATE TABLE stored_responses_totals (
                id INTEGER PRIMARY KEY, entries {integer} NOT NULL, bytes {integer} NOT NULL)""",
            "INSERT INTO stored_responses_totals VALUES (1, 0, 0)",
        )
    ]


# taken first by every write: the totals row's lock is what writers take turns on
_LOCK = "UPDATE stored_responses_totals SET entries = entries WHERE id = 1 RETURNING entries, bytes"
_EXPIRE = "DELETE FROM stored_responses WHERE stored_at < ? RETURNING size"
_REPLACE = "DELETE FROM stored_responses WHERE tenant = ? AND id = ? RETURNING size"
_INSERT = (
    "INSERT INTO stored_responses (tenant, id, stored_at, size, messages) VALUES (?, ?, ?, ?, ?)"
)
_SET = "UPDATE stored_responses_totals SET entries = ?, bytes = ? WHERE id = 1"
_COUNT = "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM stored_responses"
_TRIM = (
    "DELETE FROM stored_responses WHERE (tenant, id) IN (SELECT tenant, id FROM"
    " stored_responses WHERE NOT (tenant = ? AND id = ?) ORDER BY stored_at LIMIT ?)"
    " RETURNING size"
)
_GET = "SELECT messages FROM stored_responses WHERE tenant = ? AND id = ? AND stored_at >= ?"

#: Expired rows are deleted by a write at most this often (per process; the TTL if it is
#: shorter); reads never return them in the meantime.
EXPIRE_EVERY_S = 60.0

#: Past a bound, trim down to this fraction of both bounds.
TRIM_TO = 0.95


def _bytes(removed: list[tuple[Any, ...]]) -> int:
    """The bytes of the rows a ``DELETE ... RETURNING size`` removed."""
    return sum(int(row[0]) for row in removed)


#: Runs one statement, returning its rows as tuples.
Run = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


class _SqlResponseStore:
    """What both databases share: the statements, expiry and trimming."""

    blocks = True

    def __init__(self, max_entries: int, ttl_s: float, max_bytes: int) -> None:
        self._max = max_entries
        self._ttl = ttl_s
        self._max_bytes = max_bytes
        self._next_expiry = 0.0
        self._expire_every = min(EXPIRE_EVERY_S, ttl_s)

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
            [(entries, total)] = run(_LOCK, ())
            removed = run(_REPLACE, (tenant, response_id))
            if now >= self._next_expiry:
                removed += run(_EXPIRE, (now - self._ttl,))
                self._next_expiry = now + self._expire_every
            run(_INSERT, (tenant, response_id, now, len(data), data))
            entries, total = entries + 1 - len(removed), total + len(data) - _bytes(removed)
            if not self._fits(entries, total, 1.0):
                entries, total = self._trim(run, (tenant, response_id))
            run(_SET, (entries, total))

        self._write(work)

    def _fits(self, entries: int, total: int, fraction: float) -> bool:
        return entries <= self._max * fraction and total <= self._max_bytes * fraction

    def _trim(self, run: Run, keep: tuple[str, str]) -> tuple[int, int]:
        """Delete the oldest entries (never ``keep``, the one just stored) until both
        bounds are :data:`TRIM_TO` full; the exact totals after it."""
        [(entries, total)] = run(_COUNT, ())
        entries, total = int(entries), int(total)
        while not self._fits(entries, total, TRIM_TO) and entries > 1:
            average = total / entries
            over = max(entries - self._max * TRIM_TO, (total - self._max_bytes * TRIM_TO) / average)
            dropped = run(_TRIM, (*keep, max(1, math.ceil(over))))
            if not dropped:
                break
            entries, total = entries - len(dropped), total - _bytes(dropped)
        return entries, total

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
