"""Where stored responses live, decided by the stores the config already shares.

No setting of its own: a gateway that shares state across replicas already names the
place, and stored responses go there too, so a ``previous_response_id`` follow-up works
on whichever worker or replica it reaches. In order:

1. **Redis**, when the cache or the budgets keep their state there (``cache.store:
   redis``, ``governance.store: redis``): every replica; key TTLs expire the entries.
2. **PostgreSQL**, when the ledger or the virtual keys live there (``ledger.store:
   postgres``, ``governance.keys_store: postgres``): every replica, in that database.
3. **SQLite**, when ``server.workers`` is above 1 (and nothing above is shared): the
   workers of the host share ``<ledger.path without .db>.responses.db``, beside the
   ledger file (not in it: the ledger holds no prompts unless ``capture_bodies`` is on).
4. **Memory** otherwise: one process, nothing to share, no disk.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from thrifty.config.schema import ThriftyConfig
from thrifty.server.responses_store import MemoryResponseStore, ResponseStore

__all__ = ["open_response_store", "response_store_kind", "sqlite_path"]

log = logging.getLogger(__name__)

Kind = Literal["redis", "postgres", "sqlite", "memory"]


def _postgres_dsn(config: ThriftyConfig) -> str | None:
    if config.ledger.store == "postgres":
        return config.ledger.dsn
    governance = config.governance
    if governance.keys_store == "postgres":
        return governance.keys_dsn or config.ledger.dsn
    return None


def response_store_kind(config: ThriftyConfig, *, redis_in_use: bool) -> Kind:
    """Which store, from the config; ``redis_in_use``: another feature keeps state in
    Redis (``server/features.redis_components``)."""
    if redis_in_use:
        return "redis"
    if _postgres_dsn(config):
        return "postgres"
    return "sqlite" if config.server.workers > 1 else "memory"


def sqlite_path(config: ThriftyConfig) -> Path:
    """The SQLite file the workers of one host share: beside the ledger's."""
    return Path(config.ledger.path).with_suffix(".responses.db")


def open_response_store(config: ThriftyConfig, *, redis_in_use: bool) -> ResponseStore:
    """The store :func:`response_store_kind` names, opened (SQLite: the file is created
    and migrated now; Redis and PostgreSQL connect on first use)."""
    kind = response_store_kind(config, redis_in_use=redis_in_use)
    store: ResponseStore
    if kind == "redis":
        from thrifty.server.responses_redis import RedisResponseStore
        from thrifty.stores.redis import RedisLink

        store = RedisResponseStore(RedisLink(config.redis))
    elif kind == "postgres":
        from thrifty.server.responses_sql import PostgresResponseStore

        dsn = _postgres_dsn(config)
        assert dsn is not None  # the schema requires a dsn for a postgres store
        store = PostgresResponseStore(dsn)
    elif kind == "sqlite":
        from thrifty.server.responses_sql import SqliteResponseStore

        store = SqliteResponseStore(sqlite_path(config))
    else:
        store = MemoryResponseStore()
    log.info("stored responses kept", extra={"store": kind})
    return store
