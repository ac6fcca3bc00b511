"""Budget and rate-limit stores in one SQLite file, atomic across processes.

Every operation is one ``BEGIN IMMEDIATE`` transaction: it takes the file's write lock
before reading, so the check and the add of a reservation (or a rate-limit hit) cannot
interleave with another worker's. An uncontended transaction runs at once in the caller's
thread; a contended one waits on a worker thread, so the event loop never waits for the
lock, and a settle that was started finishes even if the request that awaited it is
cancelled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from thrifty.governance.budgets.base import (
    BucketUsage,
    BudgetBucket,
    BudgetExceeded,
    RateDecision,
    Reservation,
)
from thrifty.governance.budgets.memory import over_limit
from thrifty.stores.sqlite import connect, is_locked, locked_store, migrate

__all__ = ["MIGRATIONS", "SqliteBudgetStore", "SqliteRateLimitStore"]

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Migration ``i`` brings the schema to version ``i + 1``; append, never edit.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE budget_buckets (
            scope TEXT NOT NULL, period TEXT NOT NULL, window TEXT NOT NULL,
            spent REAL NOT NULL DEFAULT 0, reserved REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (scope, period, window))""",
        # state: open, or expired (counted as spent); a settled reservation is deleted
        """CREATE TABLE budget_reservations (
            id TEXT PRIMARY KEY, amount REAL NOT NULL, expires_at REAL NOT NULL,
            state TEXT NOT NULL, buckets TEXT NOT NULL, updated_at REAL NOT NULL)""",
        "CREATE INDEX budget_reservations_state ON budget_reservations(state, expires_at)",
        """CREATE TABLE budget_alerts (
            scope TEXT NOT NULL, period TEXT NOT NULL, window TEXT NOT NULL,
            threshold REAL NOT NULL, claimed_at REAL NOT NULL,
            PRIMARY KEY (scope, period, window, threshold))""",
        """CREATE TABLE rate_windows (
            scope TEXT NOT NULL, window_s REAL NOT NULL, idx INTEGER NOT NULL,
            count INTEGER NOT NULL, PRIMARY KEY (scope, window_s, idx))""",
    ),
]

#: An expired reservation is kept this long for a late settle to correct, then forgotten.
_FORGET_EXPIRED_S = 86_400.0
_ADD = (
    "INSERT INTO budget_buckets (scope, period, window, spent, reserved) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (scope, period, window) DO UPDATE SET "
    "spent = spent + excluded.spent, reserved = MAX(0, reserved + excluded.reserved)"
)


class _SqliteFile:
    """Two connections to ``path``: a fast one for the caller's thread, and one on a worker
    thread for when the file is locked by another writer.

    ``call`` first tries the transaction right away with a zero busy timeout (an
    uncontended transaction takes ~0.1 ms, less than handing it to a thread); if another
    process or task holds the write lock, the transaction goes to the worker thread, which
    waits for the lock without blocking the event loop, for at most ``lock_timeout_s``
    (``governance.store_lock_timeout_s``); then the request gets a 503 ``store_unavailable``.
    """

    def __init__(self, path: str | Path, lock_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thrifty-budgets")
        self._conn = self._executor.submit(self._open, lock_timeout_s).result()
        self._fast = self._open(0.0)
        self._fast_lock = threading.Lock()

    def _open(self, timeout: float) -> sqlite3.Connection:
        # the waiting connection owns the file (WAL, migrations); the fast one never waits
        conn = connect(self.path, timeout_s=timeout, wal=bool(timeout))
        if timeout:
            migrate(conn, "budgets_schema_version", MIGRATIONS)
        return conn

    @staticmethod
    def _run(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` inside a transaction already begun on ``conn``."""
        try:
            result = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._run(self._conn, work)

    async def call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._fast_lock.acquire(blocking=False):
            try:
                try:
                    self._fast.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:
                    pass  # another writer holds the lock: wait for it off the event loop
                else:
                    return self._run(self._fast, work)
            finally:
                self._fast_lock.release()
        future = self._executor.submit(self._transaction, work)
        try:
            # shield: a cancelled caller stops waiting, the transaction still completes
            return await asyncio.shield(asyncio.wrap_future(future))
        except sqlite3.OperationalError as exc:
            if not is_locked(exc):
                raise
            raise locked_store("budget store", exc, path=str(self.path)) from None

    def close(self) -> None:
        self._fast.close()
        self._executor.submit(self._conn.close).result()
        self._executor.shutdown()


def _expire(conn: sqlite3.Connection, now: float) -> None:
    """Count reservations past their ttl as spent at their reserved amount."""
    rows = conn.execute(
        "SELECT id, amount, buckets FROM budget_reservations WHERE state = 'open' "
        "AND expires_at <= ?",
        (now,),
    ).fetchall()
    for reservation_id, amount, buckets in rows:
        for scope, period, window in json.loads(buckets):
            conn.execute(_ADD, (scope, period, window, amount, -amount))
        conn.execute(
            "UPDATE budget_reservations SET state = 'expired', updated_at = ? WHERE id = ?",
            (now, reservation_id),
        )
    conn.execute(  # expired and never settled: forget them (they stay counted as spent)
        "DELETE FROM budget_reservations WHERE state = 'expired' AND expires_at < ?",
        (now - _FORGET_EXPIRED_S,),
    )


def _usage(conn: sqlite3.Connection, bucket: BudgetBucket) -> BucketUsage:
    row = conn.execute(
        "SELECT spent, reserved FROM budget_buckets WHERE scope = ? AND period = ? AND window = ?",
        (bucket.scope, bucket.period, bucket.window),
    ).fetchone()
    return BucketUsage(bucket, *(row or (0.0, 0.0)))


class SqliteBudgetStore:
    """A :class:`~thrifty.governance.budgets.base.BudgetStore` any number of processes may share.

    >>> store = SqliteBudgetStore("/var/lib/thrifty/budgets.db")  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, lock_timeout_s: float = 30.0) -> None:
        self._file = _SqliteFile(path, lock_timeout_s)

    async def reserve(
        self, buckets: tuple[BudgetBucket, ...], amount_usd: float, ttl_s: float
    ) -> Reservation:
        reservation_id = uuid.uuid4().hex

        def work(conn: sqlite3.Connection) -> None:
            now = time.time()
            _expire(conn, now)
            for bucket in buckets:
                usage = _usage(conn, bucket)
                if over_limit(usage.spent_usd, usage.reserved_usd, amount_usd, bucket.limit_usd):
                    raise BudgetExceeded(usage, amount_usd)
            keys = [(b.scope, b.period, b.window) for b in buckets]
            for key in keys:
                conn.execute(_ADD, (*key, 0.0, amount_usd))
            conn.execute(
                "INSERT INTO budget_reservations VALUES (?, ?, ?, 'open', ?, ?)",
                (reservation_id, amount_usd, now + ttl_s, json.dumps(keys), now),
            )

        await self._file.call(work)
        return Reservation(reservation_id, buckets, amount_usd)

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        def work(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT amount, state, buckets FROM budget_reservations WHERE id = ?",
                (reservation.id,),
            ).fetchone()
            if row is None:
                return  # settled before (idempotent), or expired long ago
            amount, state, buckets = row
            for scope, period, window in json.loads(buckets):
                if state == "expired":  # counted at its reserved amount: correct it
                    conn.execute(_ADD, (scope, period, window, actual_usd - amount, 0.0))
                else:
                    conn.execute(_ADD, (scope, period, window, actual_usd, -amount))
            conn.execute("DELETE FROM budget_reservations WHERE id = ?", (reservation.id,))

        await self._file.call(work)

    async def usage(self, buckets: tuple[BudgetBucket, ...]) -> list[BucketUsage]:
        def work(conn: sqlite3.Connection) -> list[BucketUsage]:
            _expire(conn, time.time())
            return [_usage(conn, b) for b in buckets]

        return await self._file.call(work)

    async def claim_alert(self, bucket: BudgetBucket, threshold: float) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO budget_alerts VALUES (?, ?, ?, ?, ?)",
                (bucket.scope, bucket.period, bucket.window, threshold, time.time()),
            )
            return cursor.rowcount == 1

        return await self._file.call(work)

    async def aclose(self) -> None:
        self._file.close()


class SqliteRateLimitStore:
    """A :class:`~thrifty.governance.budgets.base.RateLimitStore` with fixed windows in SQLite."""

    def __init__(self, path: str | Path, lock_timeout_s: float = 30.0) -> None:
        self._file = _SqliteFile(path, lock_timeout_s)
        self._hits = 0

    async def hit(self, scope: str, limit: int, amount: int, window_s: float) -> RateDecision:
        self._hits += 1
        prune = self._hits % 1000 == 0

        def work(conn: sqlite3.Connection) -> RateDecision:
            now = time.time()
            index = math.floor(now / window_s)
            row = conn.execute(
                "SELECT count FROM rate_windows WHERE scope = ? AND window_s = ? AND idx = ?",
                (scope, window_s, index),
            ).fetchone()
            count = row[0] if row else 0
            if count + amount > limit:
                return RateDecision(False, (index + 1) * window_s - now)
            conn.execute(
                "INSERT INTO rate_windows VALUES (?, ?, ?, ?) ON CONFLICT "
                "(scope, window_s, idx) DO UPDATE SET count = count + excluded.count",
                (scope, window_s, index, amount),
            )
            if prune:
                conn.execute("DELETE FROM rate_windows WHERE (idx + 1) * window_s < ?", (now,))
            return RateDecision(True, 0.0)

        return await self._file.call(work)

    async def aclose(self) -> None:
        self._file.close()
