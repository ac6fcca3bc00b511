"""Virtual keys in their own SQLite file, stored hashed.

Only ``sha256(secret)`` is kept: a secret is 32 random bytes, so a fast hash is as safe as
a slow one (there is nothing to guess), and a lookup stays one indexed read. The secret is
shown once, when the key is created.

Change detection, not a TTL: ``PRAGMA data_version`` changes whenever another connection
(another worker, the CLI) commits to the file, and costs microseconds, so :meth:`find`
drops its cache on every such change and a revoked key is refused by the very next
request in every process. That is why keys live in their own file: the ledger and the
budget counters commit constantly and would empty the cache on every request.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from thrifty.governance.keys.identity import Caller, KeyBudget, Overrides
from thrifty.governance.keys.spec import KeySpec
from thrifty.stores.sqlite import migrate

__all__ = [
    "SECRET_PREFIX", "KeyStore", "SqliteKeyStore", "VirtualKey", "changed_columns", "from_row",
    "key_id_of_digest", "new_key",
]  # fmt: skip

SECRET_PREFIX = "sk-thr-"
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


def key_id_of_digest(digest: bytes) -> str:
    """The ledger's key id for a key whose sha256 is ``digest`` (same for config keys)."""
    return "key-" + digest.hex()[:12]


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """A stored key, without its secret."""

    id: str
    hint: str
    created_at: float
    owner: str | None = None
    name: str | None = None
    team: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    models: tuple[str, ...] | None = None
    overrides: Overrides = field(default_factory=Overrides)
    budgets: tuple[KeyBudget, ...] = ()
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def caller(self) -> Caller:
        return Caller(
            key_id=self.id,
            source="virtual",
            owner=self.owner,
            team=self.team,
            tags=dict(self.tags),
            models=frozenset(self.models) if self.models is not None else None,
            overrides=self.overrides,
            budgets=self.budgets,
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "virtual_key",
            "hint": self.hint,
            "owner": self.owner,
            "name": self.name,
            "team": self.team,
            "tags": dict(self.tags),
            "models": list(self.models) if self.models is not None else None,
            "overrides": self.overrides.as_dict(),
            "budgets": [{"period": b.period, "limit_usd": b.limit_usd} for b in self.budgets],
            "requests_per_minute": self.requests_per_minute,
            "tokens_per_minute": self.tokens_per_minute,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "active": self.active,
        }


@runtime_checkable
class KeyStore(Protocol):
    """What the gateway, the admin API and ``thrifty keys`` need of a key store.

    :class:`SqliteKeyStore` (one host) and
    :class:`~thrifty.governance.keys.postgres.PostgresKeyStore` (every replica) implement it.
    The contract that matters: once :meth:`revoke` returns, :meth:`find` in every process
    sharing the store returns the key as revoked.
    """

    def create(self, spec: KeySpec) -> tuple[VirtualKey, str]: ...
    def list(self, include_revoked: bool = True) -> list[VirtualKey]: ...
    def get(self, key_id: str) -> VirtualKey | None: ...
    def update(self, key_id: str, spec: KeySpec) -> VirtualKey | None: ...
    def revoke(self, key_id: str) -> VirtualKey | None: ...
    def find(self, digest: bytes) -> VirtualKey | None: ...
    def close(self) -> None: ...


def from_row(row: Mapping[str, Any]) -> VirtualKey:
    """A ``virtual_keys`` row (SQLite or PostgreSQL: same columns) as a key."""
    models = json.loads(row["models"]) if row["models"] is not None else None
    return VirtualKey(
        id=row["id"],
        hint=row["hint"],
        created_at=row["created_at"],
        owner=row["owner"],
        name=row["name"],
        team=row["team"],
        tags=json.loads(row["tags"]),
        models=tuple(models) if models is not None else None,
        overrides=Overrides(**json.loads(row["overrides"])),
        budgets=tuple(KeyBudget(**b) for b in json.loads(row["budgets"])),
        requests_per_minute=row["requests_per_minute"],
        tokens_per_minute=row["tokens_per_minute"],
        revoked_at=row["revoked_at"],
    )


def new_key(spec: KeySpec) -> tuple[VirtualKey, str, tuple[Any, ...]]:
    """A fresh key, its secret, and its ``virtual_keys`` row (column order), for any store."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    digest = hashlib.sha256(secret.encode()).digest()
    key = VirtualKey(
        id=key_id_of_digest(digest),
        hint=secret[: len(SECRET_PREFIX) + 4] + "…",
        created_at=time.time(),
        owner=spec.owner,
        name=spec.name,
        team=spec.team,
        tags=dict(spec.tags),
        models=tuple(spec.models) if spec.models is not None else None,
        overrides=Overrides(**spec.overrides.model_dump()),
        budgets=tuple(KeyBudget(b.period, b.limit_usd) for b in spec.budgets),
        requests_per_minute=spec.requests_per_minute,
        tokens_per_minute=spec.tokens_per_minute,
    )
    row = (
        key.id, digest.hex(), key.hint, key.owner, key.name, key.team, json.dumps(key.tags),
        json.dumps(list(key.models)) if key.models is not None else None,
        json.dumps(key.overrides.as_dict()),
        json.dumps([{"period": b.period, "limit_usd": b.limit_usd} for b in key.budgets]),
        key.requests_per_minute, key.tokens_per_minute, key.created_at, None,
    )  # fmt: skip
    return key, secret, row


def changed_columns(spec: KeySpec) -> dict[str, Any]:
    """Column -> new stored value, for the fields ``spec`` was given (``model_fields_set``)."""
    columns: dict[str, Callable[[], Any]] = {
        "owner": lambda: spec.owner,
        "name": lambda: spec.name,
        "team": lambda: spec.team,
        "tags": lambda: json.dumps(spec.tags),
        "models": lambda: json.dumps(spec.models) if spec.models is not None else None,
        "overrides": lambda: json.dumps(Overrides(**spec.overrides.model_dump()).as_dict()),
        "budgets": lambda: json.dumps([b.model_dump() for b in spec.budgets]),
        "requests_per_minute": lambda: spec.requests_per_minute,
        "tokens_per_minute": lambda: spec.tokens_per_minute,
    }
    return {name: make() for name, make in columns.items() if name in spec.model_fields_set}


class SqliteKeyStore:
    """Create, list, revoke and look up virtual keys; safe to share between processes.

    >>> store = SqliteKeyStore("thrifty-keys.db")  # doctest: +SKIP
    >>> key, secret = store.create(KeySpec(owner="ana", team="search"))  # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        migrate(self._conn, "keys_schema_version", MIGRATIONS)
        self._version = -1
        self._cache: dict[str, VirtualKey | None] = {}

    def create(self, spec: KeySpec) -> tuple[VirtualKey, str]:
        """Store a new key; returns it and its secret (the only time the secret exists)."""
        key, secret, row = new_key(spec)
        with self._lock:
            self._conn.execute(
                f"INSERT INTO virtual_keys VALUES ({', '.join('?' * len(row))})", row
            )
            self._cache.clear()
        return key, secret

    def list(self, include_revoked: bool = True) -> list[VirtualKey]:
        sql = "SELECT * FROM virtual_keys"
        if not include_revoked:
            sql += " WHERE revoked_at IS NULL"
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY created_at").fetchall()
        return [from_row(r) for r in rows]

    def get(self, key_id: str) -> VirtualKey | None:
        with self._lock:
            row = self._conn.execute(
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
                self._cache.clear()
        return self.get(key_id)

    def revoke(self, key_id: str) -> VirtualKey | None:
        """Revoke (the row stays, so the ledger's key id keeps its owner); None if unknown."""
        with self._lock:
            self._conn.execute(
                "UPDATE virtual_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), key_id),
            )
            self._cache.clear()
        return self.get(key_id)

    def find(self, digest: bytes) -> VirtualKey | None:
        """The key whose secret hashes to ``digest`` (revoked ones too), or None.

        Cached until any connection changes the file (see the module docstring).
        """
        hex_digest = digest.hex()
        with self._lock:
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._version:
                self._cache.clear()
                self._version = version
            if hex_digest in self._cache:
                return self._cache[hex_digest]
            row = self._conn.execute(
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
