"""Virtual keys in PostgreSQL, so every replica on every host shares them.

Why PostgreSQL and not Redis: a key is a durable record (the ledger's key ids point to
its owner and team for good), Redis in a scale-out deployment is a cache-grade store
(no persistence required, budgets may even fail open), and key lookups must fail closed.
The ledger's database is already there and already durable: the keys get one table in it.

No cache: :meth:`find` is one read by the unique ``hash`` index on every request, so
a revoke committed through any replica (or ``thrifty keys revoke``) is refused by the
very next request on every replica — the guarantee the SQLite store gets from
``PRAGMA data_version``. A lookup costs one round trip to the database (the SQLite store's
costs a file read). A database that cannot be reached is a 503
(:class:`~thrifty.errors.StoreUnavailable`), never a key accepted unchecked.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from thrifty.errors import StoreUnavailable
from thrifty.governance.keys.base import VirtualKey, changed_columns, from_row, new_key
from thrifty.governance.keys.spec import KeySpec
from thrifty.stores.postgres import Reconnecting, migrate, psycopg_module

__all__ = ["MIGRATIONS", "PostgresKeyStore"]


#: The SQLite store's schema in PostgreSQL types; JSON stays TEXT so rows decode alike.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE virtual_keys (
            id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, hint TEXT NOT NULL,
            owner TEXT, name TEXT, team TEXT, tags TEXT NOT NULL, models TEXT,
            overrides TEXT NOT NULL, budgets TEXT NOT NULL,
            requests_per_minute INTEGER, tokens_per_minute INTEGER,
            created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION)""",
    ),
]
_MIGRATION_LOCK = 0x7468726966747932  # "thrifty2": apart from the ledger's lock id
_COLUMNS = 14



class PostgresKeyStore:
    """A :class:`~thrifty.governance.keys.base.KeyStore` in PostgreSQL; one connection a process.

    >>> store = PostgresKeyStore("postgresql://thrifty@db/thrifty")  # doctest: +SKIP
    """

    #: A lookup is a network round trip: the gateway makes it on a worker thread.
    find_blocks = True

    def __init__(self, dsn: str, *, connect_timeout_s: float = 10.0) -> None:
        self.dsn = dsn
        self._link = Reconnecting(dsn, "virtual key store", self._migrate, connect_timeout_s)
        try:
            self._link.open()
        except psycopg_module().OperationalError as exc:
            raise StoreUnavailable(
                f"the virtual key store (PostgreSQL) is unavailable: {exc}"
            ) from exc

    @staticmethod
    def _migrate(conn: Any) -> None:
        migrate(
            conn, lock_id=_MIGRATION_LOCK, version_table="keys_schema_version",
            migrations=MIGRATIONS,
        )  # fmt: skip

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """One statement; a connection lost since the last one (restart) is replaced once
        (``stores.postgres.Reconnecting``).

        Raises :class:`StoreUnavailable` (503) when the database cannot be reached.
        """

        def execute(conn: Any) -> list[dict[str, Any]]:
            cursor = conn.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []

        return self._link.run(execute)

    def create(self, spec: KeySpec) -> tuple[VirtualKey, str]:
        """Store a new key; returns it and its secret (the only time the secret exists)."""
        key, secret, row = new_key(spec)
        self._run(f"INSERT INTO virtual_keys VALUES ({', '.join(['%s'] * _COLUMNS)})", row)
        return key, secret

    def list(self, include_revoked: bool = True) -> list[VirtualKey]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        rows = self._run(f"SELECT * FROM virtual_keys{where} ORDER BY created_at")
        return [from_row(r) for r in rows]

    def get(self, key_id: str) -> VirtualKey | None:
        rows = self._run("SELECT * FROM virtual_keys WHERE id = %s", (key_id,))
        return from_row(rows[0]) if rows else None

    def update(self, key_id: str, spec: KeySpec) -> VirtualKey | None:
        """Change the fields ``spec`` was given (``model_fields_set``); None if unknown."""
        changed = changed_columns(spec)
        if changed:
            assignments = ", ".join(f"{name} = %s" for name in changed)
            self._run(
                f"UPDATE virtual_keys SET {assignments} WHERE id = %s",
                (*changed.values(), key_id),
            )
        return self.get(key_id)

    def revoke(self, key_id: str) -> VirtualKey | None:
        """Revoke (the row stays, so the ledger's key id keeps its owner); None if unknown."""
        self._run(
            "UPDATE virtual_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL",
            (time.time(), key_id),
        )
        return self.get(key_id)

    def find(self, digest: bytes) -> VirtualKey | None:
        """The key whose secret hashes to ``digest`` (revoked ones too), or None."""
        rows = self._run("SELECT * FROM virtual_keys WHERE hash = %s", (digest.hex(),))
        return from_row(rows[0]) if rows else None

    def close(self) -> None:
        self._link.close()
