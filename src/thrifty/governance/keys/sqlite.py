"""Virtual keys in their own SQLite file, stored hashed (see :mod:`.base`).

Change detection, not a TTL: ``PRAGMA data_version`` changes whenever another connection
(another worker, the CLI) commits to the file, and costs microseconds, so :meth:`find`
drops its cache on every such change and a revoked key is refused by the very next
request in every process. That is why keys live in their own file: the ledger and the
budget counters commit constantly and would empty the cache on every request.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from thrifty.governance.keys.base import VirtualKey, changed_columns, from_row, new_key
from thrifty.governance.keys.spec import KeySpec
from thrifty.stores.sqlite import connect, migrate

__all__ = ["MIGRATIONS", "SqliteKeyStore"]

MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE virtual_keys (
            id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, hint TEXT NOT NULL,
            owner TEXT, name TEXT, team TEXT, tags TEXT NOT NULL, models TEXT,
            overrides TEXT NOT NULL, budgets TEXT NOT NULL,
            requests_per_minute INTEGER, tokens_per_minute INTEGER,
            created_at REAL NOT NULL, revoked_at REAL)""",
    ),
]
_CACHE_MAX = 10_000


class SqliteKeyStore:
    """Create, list, revoke and look up virtual keys; safe to share between processes.

    >>> store = SqliteKeyStore("thrifty-keys.db")  # doctest: +SKIP
    >>> key, secret = store.create(KeySpec(owner="ana", team="search"))  # doctest: +SKIP
    """

    #: A lookup reads a local file (WAL: never waits for a writer), mostly from the cache.
    find_blocks = False

    def __init__(self, path: str | Path, lock_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        # writes and reads on their own connections and locks: a write waiting for another
        # process's lock (up to ``lock_timeout_s``) never holds up a lookup (WAL readers
        # do not wait for writers)
        self._lock = threading.Lock()
        self._conn = connect(self.path, timeout_s=lock_timeout_s, synchronous=None,
                             named_rows=True)  # fmt: skip
        migrate(self._conn, "keys_schema_version", MIGRATIONS)
        self._read_lock = threading.Lock()
        self._reader = connect(self.path, wal=False, synchronous=None, named_rows=True)
        self._version = -1
        self._cache: dict[str, VirtualKey | None] = {}

    def create(self, spec: KeySpec) -> tuple[VirtualKey, str]:
        """Store a new key; returns it and its secret (the only time the secret exists)."""
        key, secret, row = new_key(spec)
        with self._lock:
            self._conn.execute(
                f"INSERT INTO virtual_keys VALUES ({', '.join('?' * len(row))})", row
            )
        self._forget()
        return key, secret

    def _forget(self) -> None:
        with self._read_lock:
            self._cache.clear()

    def list(self, include_revoked: bool = True) -> list[VirtualKey]:
        sql = "SELECT * FROM virtual_keys"
        if not include_revoked:
            sql += " WHERE revoked_at IS NULL"
        with self._read_lock:
            rows = self._reader.execute(sql + " ORDER BY created_at").fetchall()
        return [from_row(r) for r in rows]

    def get(self, key_id: str) -> VirtualKey | None:
        with self._read_lock:
            row = self._reader.execute(
                "SELECT * FROM virtual_keys WHERE id = ?", (key_id,)
            ).fetchone()
        return from_row(row) if row is not None else None

    def update(self, key_id: str, spec: KeySpec) -> VirtualKey | None:
        """Change the fields ``spec`` was given (``model_fields_set``); None if unknown."""
        changed = changed_columns(spec)
        if changed:
            assignments = ", ".join(f"{name} = ?" for name in changed)
            values = list(changed.values())
            with self._lock:
                self._conn.execute(
                    f"UPDATE virtual_keys SET {assignments} WHERE id = ?", (*values, key_id)
                )
            self._forget()
        return self.get(key_id)

    def revoke(self, key_id: str) -> VirtualKey | None:
        """Revoke (the row stays, so the ledger's key id keeps its owner); None if unknown."""
        with self._lock:
            self._conn.execute(
                "UPDATE virtual_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), key_id),
            )
        self._forget()
        return self.get(key_id)

    def find(self, digest: bytes) -> VirtualKey | None:
        """The key whose secret hashes to ``digest`` (revoked ones too), or None.

        Cached until any connection changes the file (see the module docstring).
        """
        hex_digest = digest.hex()
        with self._read_lock:
            version = self._reader.execute("PRAGMA data_version").fetchone()[0]
            if version != self._version:
                self._cache.clear()
                self._version = version
            if hex_digest in self._cache:
                return self._cache[hex_digest]
            row = self._reader.execute(
                "SELECT * FROM virtual_keys WHERE hash = ?", (hex_digest,)
            ).fetchone()
            key = from_row(row) if row is not None else None
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[hex_digest] = key
        return key

    def close(self) -> None:
        with self._lock:
            self._conn.close()
        with self._read_lock:
            self._reader.close()
