"""Versioned schema migrations for the SQLite stores (ledger, cache).

Each store keeps a list of migrations (tuples of SQL statements; migration ``i`` brings
the schema to version ``i + 1``) and a version table of its own, so stores can share a
file. Applying them takes the write lock first, so several processes may start at once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence


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
