"""The persistent cache store: one SQLite file in WAL mode, survives restarts.

WAL lets ``get`` read on its own connection while a ``set`` commits on another.
``synchronous=NORMAL`` keeps a commit to one ``write()`` (no fsync): after a power failure
the last entries may be lost, which for a cache only costs misses.

``get`` never writes: it records the touch (recency and hit count) in memory, and the next
``set`` applies all pending touches in its own transaction (or a read-only workload flushes
them every :data:`TOUCH_BATCH` hits). Entry and byte totals live in a one-row table kept by
triggers, so checking the bounds on every insert is O(1) even across processes sharing the
file. When a bound is exceeded, least recently used entries are evicted down to
:data:`EVICT_TO` of it in the same transaction, so most inserts evict nothing.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from thrifty.cache.stores.base import CacheEntry, check_bounds
from thrifty.stores.sqlite import connect, migrate

__all__ = ["EVICT_TO", "MIGRATIONS", "TOUCH_BATCH", "SqliteCacheStore"]

#: After exceeding a bound, evict down to this fraction of it.
EVICT_TO = 0.95
#: Pending touches that make a ``get`` flush them itself (no ``set`` came in between).
TOUCH_BATCH = 256

#: Schema migrations, applied in order; migration ``i`` brings the schema to version ``i + 1``.
#: Never edit a released entry: append a new one. Table names are prefixed ``cache_`` so the
#: cache may share a file with other stores.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE cache_entries (
            key TEXT PRIMARY KEY, scope TEXT NOT NULL, value BLOB NOT NULL,
            created_at REAL NOT NULL, expires_at REAL, last_used REAL NOT NULL,
            hits INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL, meta TEXT NOT NULL)""",
        "CREATE INDEX cache_entries_last_used ON cache_entries(last_used)",
        "CREATE INDEX cache_entries_expires_at ON cache_entries(expires_at)",
        "CREATE INDEX cache_entries_scope ON cache_entries(scope)",
        """CREATE TABLE cache_totals (
            id INTEGER PRIMARY KEY CHECK (id = 0),
            entries INTEGER NOT NULL, bytes INTEGER NOT NULL)""",
        "INSERT INTO cache_totals VALUES (0, 0, 0)",
        """CREATE TRIGGER cache_entries_insert AFTER INSERT ON cache_entries BEGIN
            UPDATE cache_totals SET entries = entries + 1, bytes = bytes + new.size; END""",
        """CREATE TRIGGER cache_entries_delete AFTER DELETE ON cache_entries BEGIN
            UPDATE cache_totals SET entries = entries - 1, bytes = bytes - old.size; END""",
        """CREATE TRIGGER cache_entries_resize AFTER UPDATE OF size ON cache_entries BEGIN
            UPDATE cache_totals SET bytes = bytes + new.size - old.size; END""",
    ),
]

_SELECT = "SELECT value, created_at, expires_at, scope, meta, hits FROM cache_entries WHERE key = ?"
# An upsert, not INSERT OR REPLACE: REPLACE's implicit delete skips the delete trigger.
_UPSERT = """INSERT INTO cache_entries
    (key, scope, value, created_at, expires_at, last_used, hits, size, meta)
    VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)
    ON CONFLICT(key) DO UPDATE SET scope = excluded.scope, value = excluded.value,
        created_at = excluded.created_at, expires_at = excluded.expires_at,
        last_used = excluded.last_used, hits = 0, size = excluded.size, meta = excluded.meta"""
_TOUCH = "UPDATE cache_entries SET last_used = MAX(last_used, ?), hits = hits + ? WHERE key = ?"
_PURGE = "DELETE FROM cache_entries WHERE expires_at <= ?"
_EVICT_COUNT = """DELETE FROM cache_entries WHERE key IN (
    SELECT key FROM cache_entries WHERE key != ? ORDER BY last_used LIMIT ?)"""
# Keep the newest entry, then the most recently used ones while the running total of
# sizes fits in the target.
_EVICT_BYTES = """DELETE FROM cache_entries WHERE key IN (
    SELECT key FROM (SELECT key, SUM(size) OVER (ORDER BY key = ? DESC, last_used DESC
        ROWS UNBOUNDED PRECEDING) AS kept FROM cache_entries) WHERE kept > ? AND key != ?)"""


class SqliteCacheStore:
    """A :class:`~thrifty.cache.stores.base.CacheStore` in one SQLite file.

    Opening creates the parent directory and the file and applies pending migrations. Reads
    and writes use separate connections, each behind its own lock; several processes may
    share the file (``busy_timeout`` waits for the write lock). Counters in :meth:`stats`
    are this process's, since it opened the store.

    >>> store = SqliteCacheStore("/var/lib/thrifty/cache.db", max_entries=100_000)  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | Path,
        max_entries: int,
        max_bytes: int | None = None,
        *,
        busy_timeout_s: float = 5.0,
    ) -> None:
        check_bounds(max_entries, max_bytes)
        self.path = Path(path)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._busy_timeout_s = busy_timeout_s
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._state_lock = threading.Lock()  # touches, counters, clock
        self._touches: dict[str, tuple[float, int]] = {}
        self._counts = {"hits": 0, "misses": 0, "evictions": 0, "expired": 0}
        self._last_stamp = 0.0
        self._closed = False
        self._writer = connect(self.path, timeout_s=busy_timeout_s)
        self._migrate()
        self._reader = connect(self.path, timeout_s=busy_timeout_s, wal=False)

    def _migrate(self) -> None:
        migrate(self._writer, "cache_schema_version", MIGRATIONS)

    @property
    def schema_version(self) -> int:
        with self._read_lock:
            row = self._reader.execute("SELECT MAX(version) FROM cache_schema_version").fetchone()
        return int(row[0])

    def get(self, key: str) -> CacheEntry | None:
        with self._read_lock:
            row = self._reader.execute(_SELECT, (key,)).fetchone()
        now = time.time()
        if row is None or (row[2] is not None and row[2] <= now):
            with self._state_lock:
                self._counts["misses"] += 1
            return None
        value, created_at, expires_at, scope, meta, hits = row
        with self._state_lock:
            self._counts["hits"] += 1
            _, pending = self._touches.get(key, (0.0, 0))
            self._touches[key] = (self._stamp_locked(now), pending + 1)
            flush = len(self._touches) >= TOUCH_BATCH
        if flush:
            with self._write_lock, contextlib.suppress(sqlite3.OperationalError):
                # Recency is bookkeeping: if another process holds the write lock past the
                # busy timeout, drop these touches rather than fail a hit.
                self._in_transaction(self._flush_touches)
        return CacheEntry(
            key, bytes(value), created_at, expires_at, scope, orjson.loads(meta), hits + pending + 1
        )

    def set(
        self,
        key: str,
        value: bytes,
        *,
        ttl_s: float | None,
        scope: str,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        meta_json = orjson.dumps(dict(meta or {})).decode()
        too_big = self.max_bytes is not None and len(value) > self.max_bytes
        store = not too_big and (ttl_s is None or ttl_s > 0)

        def write(conn: sqlite3.Connection) -> None:
            self._flush_touches(conn)
            now = time.time()
            expired = conn.execute(_PURGE, (now,)).rowcount
            if store:
                expires_at = None if ttl_s is None else now + ttl_s
                with self._state_lock:
                    stamp = self._stamp_locked(now)
                row = (key, scope, bytes(value), now, expires_at, stamp, len(value))
                conn.execute(_UPSERT, (*row, meta_json))
            else:
                conn.execute("DELETE FROM cache_entries WHERE key = ?", (key,))
            evicted = self._evict(conn, key)
            with self._state_lock:
                self._counts["expired"] += expired
                self._counts["evictions"] += evicted

        with self._write_lock:
            self._in_transaction(write)

    def delete(self, key: str) -> bool:
        with self._state_lock:
            self._touches.pop(key, None)
        with self._write_lock:
            cursor = self._writer.execute("DELETE FROM cache_entries WHERE key = ?", (key,))
        return cursor.rowcount > 0

    def clear(self, scope: str | None = None) -> int:
        with self._write_lock:
            if scope is None:
                cursor = self._writer.execute("DELETE FROM cache_entries")
            else:
                cursor = self._writer.execute("DELETE FROM cache_entries WHERE scope = ?", (scope,))
        return cursor.rowcount

    def __len__(self) -> int:
        with self._read_lock:
            total = self._reader.execute("SELECT entries FROM cache_totals").fetchone()[0]
            expired = self._reader.execute(
                "SELECT COUNT(*) FROM cache_entries WHERE expires_at <= ?", (time.time(),)
            ).fetchone()[0]
        return int(total - expired)

    def stats(self) -> dict[str, int]:
        entries = len(self)
        with self._state_lock:
            return {"entries": entries, **self._counts}

    def close(self) -> None:
        """Apply pending touches and close both connections; idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._write_lock:
            try:
                self._in_transaction(self._flush_touches)
            finally:
                self._writer.close()
        with self._read_lock:
            self._reader.close()

    # -- helpers --------------------------------------------------------------------------

    def _stamp_locked(self, now: float) -> float:
        """A strictly increasing use time, so LRU order never ties within this process.

        Call with ``_state_lock`` held.
        """
        self._last_stamp = max(now, self._last_stamp + 1e-6)
        return self._last_stamp

    def _in_transaction(self, work: Callable[[sqlite3.Connection], None]) -> None:
        """Run ``work(conn)`` in one write transaction on the writer (write lock held)."""
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            work(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _flush_touches(self, conn: sqlite3.Connection) -> None:
        with self._state_lock:
            touches, self._touches = self._touches, {}
        if touches:
            conn.executemany(_TOUCH, [(t, n, k) for k, (t, n) in touches.items()])

    def _evict(self, conn: sqlite3.Connection, newest: str) -> int:
        """Evict least recently used entries if a bound is exceeded; never ``newest``."""
        entries, size = conn.execute("SELECT entries, bytes FROM cache_totals").fetchone()
        evicted = 0
        if entries > self.max_entries:
            keep = max(1, int(self.max_entries * EVICT_TO))
            evicted += conn.execute(_EVICT_COUNT, (newest, entries - keep)).rowcount
        if self.max_bytes is not None and size > self.max_bytes:
            target = int(self.max_bytes * EVICT_TO)
            evicted += conn.execute(_EVICT_BYTES, (newest, target, newest)).rowcount
        return evicted
