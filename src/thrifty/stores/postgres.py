"""One way to reach PostgreSQL for every store that lives there (ledger, virtual keys),
and the one runner of their numbered migrations.

psycopg is an optional extra (``thrifty[postgres]``): importing it here, on first use,
turns a missing install into an error that says what to install.

Migrations work as in :mod:`thrifty.stores.sqlite`: migration ``i`` brings the schema to
version ``i + 1``, and each store records what it applied in a version table of its own
(``version``, ``applied_at``). They run in one transaction under a transaction-scoped
advisory lock whose id each store picks, so replicas starting together apply each
migration exactly once and stores sharing a database do not wait for one another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from thrifty.errors import StoreUnavailable

__all__ = ["INSTALL_HINT", "Reconnecting", "connect", "migrate", "psycopg_module"]

T = TypeVar("T")

INSTALL_HINT = "PostgreSQL stores need the postgres extra: pip install 'thrifty[postgres]'"


def psycopg_module() -> Any:
    """The ``psycopg`` module, or an ImportError that names the extra to install."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(INSTALL_HINT) from exc
    return psycopg


def connect(dsn: str, connect_timeout_s: float) -> Any:
    """An autocommit connection returning rows as dicts."""
    psycopg = psycopg_module()
    from psycopg.rows import dict_row

    return psycopg.connect(
        dsn, autocommit=True, row_factory=dict_row,
        connect_timeout=max(1, int(connect_timeout_s)),
    )  # fmt: skip


def migrate(
    conn: Any, *, lock_id: int, version_table: str, migrations: Sequence[Sequence[str]]
) -> None:
    """Bring the schema to ``len(migrations)``; ``conn`` is one from :func:`connect`.

    ``lock_id`` (a bigint) serializes the replicas migrating this store; a failing
    migration rolls the whole transaction back, version rows included.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_id,))
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {version_table} "
            "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        row = conn.execute(f"SELECT MAX(version) AS v FROM {version_table}").fetchone()
        for version in range((row["v"] or 0) + 1, len(migrations) + 1):
            for statement in migrations[version - 1]:
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {version_table} VALUES (%s, %s)", (version, time.time())
            )


class Reconnecting:
    """One process's connection, opened on first use, shared by threads under a lock, and
    replaced once when it was lost (a database restart) before failing.

    ``setup`` runs on each new connection (migrations). ``what`` names the store in the
    503 (:class:`~thrifty.errors.StoreUnavailable`) raised when the database cannot be
    reached, so a caller may retry instead of seeing a 500.
    """

    def __init__(
        self, dsn: str, what: str, setup: Callable[[Any], None], connect_timeout_s: float = 5.0
    ) -> None:
        self.dsn = dsn
        self._what = what
        self._setup = setup
        self._timeout = connect_timeout_s
        self._conn: Any = None
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            conn = connect(self.dsn, self._timeout)
            self._setup(conn)
            self._conn = conn
        return self._conn

    def open(self) -> None:
        """Connect (and set up) now, one try, raising the driver's error: for a store that
        must fail at start-up rather than on its first request."""
        with self._lock:
            self._connection()

    def run(self, work: Callable[[Any], T]) -> T:
        """``work(connection)``, retried once on a fresh connection if this one was lost."""
        psycopg = psycopg_module()
        with self._lock:
            for attempt in (1, 2):
                try:
                    return work(self._connection())
                except psycopg.OperationalError as exc:
                    lost = self._conn is None or self._conn.closed or self._conn.broken
                    if attempt == 2 or not lost:
                        raise StoreUnavailable(
                            f"the {self._what} (PostgreSQL) is unavailable; retry shortly"
                        ) from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
