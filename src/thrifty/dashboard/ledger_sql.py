"""Run the dashboard's few SQL views on whichever database the ledger store uses.

The queries themselves are written once, in portable SQL (:mod:`thrifty.dashboard.queries`);
an adapter supplies only what SQLite and PostgreSQL spell differently: the parameter
marker, the time-bucket expression, reading a field out of a JSON column, and how to run
a query (SQLite: a read-only connection to the file, which WAL lets run while the writer
commits; PostgreSQL: the store's own reader connection).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from thrifty.ledger.stores.base import LedgerStore
from thrifty.stores.sqlite import connect

__all__ = ["LedgerSql", "PostgresSql", "SqliteSql", "ledger_sql"]


class LedgerSql(Protocol):
    """The dialect of one ledger database, and a way to query it."""

    param: str
    """The parameter marker: ``?`` or ``%s``."""

    def bucket(self, column: str) -> str:
        """Integer bucket of ``column`` divided by the next parameter (a width in seconds)."""
        ...

    def json_text(self, column: str, *path: str) -> str:
        """The value at ``path`` inside JSON ``column``, NULL when absent."""
        ...

    def rows(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]: ...


class SqliteSql:
    param = "?"

    def __init__(self, path: Path) -> None:
        self.path = path

    def bucket(self, column: str) -> str:
        return f"CAST({column} / ? AS INTEGER)"  # ts > 0: truncation is floor

    def json_text(self, column: str, *path: str) -> str:
        return f"json_extract({column}, '$.{'.'.join(path)}')"

    def rows(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        conn = connect(
            self.path, read_only=True, timeout_s=10.0, synchronous=None, autocommit=False,
            named_rows=True,
        )  # fmt: skip
        try:
            return [dict(row) for row in conn.execute(sql, list(params)).fetchall()]
        finally:
            conn.close()


class PostgresSql:
    param = "%s"

    def __init__(self, store: Any) -> None:
        self.store = store

    def bucket(self, column: str) -> str:
        return f"FLOOR({column} / %s)::bigint"

    def json_text(self, column: str, *path: str) -> str:
        return f"({column} #>> '{{{','.join(path)}}}')"

    def rows(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        return self.store.select(sql, params)


def ledger_sql(store: LedgerStore) -> LedgerSql | None:
    """The adapter for ``store``'s database, or None for a store without SQL."""
    from thrifty.ledger.stores.postgres import PostgresLedgerStore
    from thrifty.ledger.stores.sqlite import SqliteLedgerStore

    if isinstance(store, SqliteLedgerStore):
        return SqliteSql(Path(store.path))
    if isinstance(store, PostgresLedgerStore):
        return PostgresSql(store)
    return None
