"""What every virtual key store shares: the protocol, the key, and its row.

Only ``sha256(secret)`` is kept: a secret is 32 random bytes, so a fast hash is as safe as
a slow one (there is nothing to guess), and a lookup stays one indexed read. The secret is
shown once, when the key is created. SQLite and PostgreSQL store the same
``virtual_keys`` columns, so one :func:`from_row` / :func:`new_key` serves both.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from thrifty.governance.keys.identity import Caller, KeyBudget, Overrides
from thrifty.governance.keys.spec import KeySpec

__all__ = [
    "SECRET_PREFIX", "KeyStore", "VirtualKey", "changed_columns", "from_row",
    "key_id_of_digest", "new_key",
]  # fmt: skip

SECRET_PREFIX = "sk-thr-"


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

    :class:`~thrifty.governance.keys.sqlite.SqliteKeyStore` (one host) and
    :class:`~thrifty.governance.keys.postgres.PostgresKeyStore` (every replica) implement it.
    The contract that matters: once :meth:`revoke` returns, :meth:`find` in every process
    sharing the store returns the key as revoked. ``find_blocks``: whether :meth:`find` may
    wait on the network (the gateway then looks keys up on a worker thread).
    """

    find_blocks: bool

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
