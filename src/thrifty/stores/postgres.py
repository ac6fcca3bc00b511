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

import time
from collections.abc import Sequence
from typing import Any

__all__ = ["INSTALL_HINT", "connect", "migrate", "psycopg_module"]

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
