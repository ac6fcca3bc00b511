"""The one way every store opens SQLite, and the versioned migrations they all apply.

The house settings: autocommit (``isolation_level=None``: stores begin their own
transactions), connections usable from any thread (each store guards its connections
with its own locks), a busy timeout, ``synchronous=NORMAL`` (with WAL: durable up to the
last checkpoint, no fsync per commit) and WAL journaling on the connection that owns the
file. The parameters are the few places where stores truly differ: the dashboard reads
the ledger read-only, the batch job store uses short-lived transactional connections
without WAL, the budget store's fast path never waits for a lock.

Each store keeps a list of migrations (tuples of SQL statements; migration ``i`` brings
the schema to version ``i + 1``) and a version table of its own, so stores can share a
file. Applying them takes the write lock first, so several processes may start at once.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from thrifty.errors import StoreUnavailable

__all__ = ["connect", "is_locked", "locked_store", "migrate", "off_loop"]

T = TypeVar("T")
log = logging.getLogger(__name__)

Synchronous = Literal["OFF", "NORMAL", "FULL"]


def connect(
    path: str | Path,
    *,
    timeout_s: float = 30.0,
    wal: bool = True,
    synchronous: Synchronous | None = "NORMAL",
    autocommit: bool = True,
    named_rows: bool = False,
    foreign_keys: bool = False,
    read_only: bool = False,
) -> sqlite3.Connection:
    """A connection to the SQLite file ``path``, with the house settings.

    ``timeout_s`` is the busy timeout (0: fail at once when another writer holds the
    lock). ``wal`` switches the file to WAL (persistent; pass False for a second
    connection to a file its owner already switched). ``synchronous=None`` keeps
    SQLite's default (FULL). ``autocommit=False`` gives Python's implicit transactions
    (``with conn:`` commits). ``named_rows`` returns :class:`sqlite3.Row`. ``read_only``
    opens an existing file with ``mode=ro`` and never creates anything.
    """
    path = Path(path)
    isolation: Literal["DEFERRED"] | None = None if autocommit else "DEFERRED"
    if read_only:
        # ``Path.as_uri`` percent-encodes: pasted into ``file:...`` as is, a ``#``, ``?``
        # or ``%`` in the path would name another file
        uri = f"{path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(
            uri, uri=True, timeout=timeout_s, isolation_level=isolation, check_same_thread=False
        )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            path, timeout=timeout_s, isolation_level=isolation, check_same_thread=False
        )
    if named_rows:
        conn.row_factory = sqlite3.Row
    if wal and not read_only:
        conn.execute("PRAGMA journal_mode=WAL")
    if synchronous is not None:
        conn.execute(f"PRAGMA synchronous={synchronous}")
    if foreign_keys:
        conn.execute("PRAGMA foreign_keys=ON")
    return conn


def migrate(
    conn: sqlite3.Connection, version_table: str, migrations: Sequence[Sequence[str]]
) -> None:
    """Bring the schema to ``len(migrations)``; ``conn`` must be in autocommit mode."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {version_table}"
        " (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    conn.execute("BEGIN IMMEDIATE")  # take the write lock before reading the version
    try:
        current = conn.execute(f"SELECT MAX(version) FROM {version_table}").fetchone()[0] or 0
        for version in range(current + 1, len(migrations) + 1):
            for statement in migrations[version - 1]:
                conn.execute(statement)
            conn.execute(f"INSERT INTO {version_table} VALUES (?, ?)", (version, time.time()))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def is_locked(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` is SQLite giving up on another connection's lock (after its busy
    timeout), as opposed to a bug in the statement."""
    return "locked" in str(exc) or "busy" in str(exc)


def locked_store(what: str, exc: sqlite3.OperationalError, **where: Any) -> StoreUnavailable:
    """The 503 for a store (``what``: "key store", ...) still locked after its timeout:
    the caller may retry. Logged here, once, with ``where`` (e.g. the path)."""
    log.warning(f"{what} locked", extra={"error": str(exc), **where})
    return StoreUnavailable(f"the {what} is locked by another process; retry shortly")


async def off_loop(what: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call`` on a worker thread: SQLite may wait up to its busy timeout for another
    process's write, and the event loop must not wait with it. A lock held past that
    timeout is :func:`locked_store`'s 503."""
    try:
        return await asyncio.to_thread(call, *args, **kwargs)
    except sqlite3.OperationalError as exc:
        if not is_locked(exc):
            raise
        raise locked_store(what, exc) from None
