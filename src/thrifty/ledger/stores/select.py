"""Open the ledger store the config names: SQLite (the zero-setup default) or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from thrifty.ledger.config import LedgerConfig
from thrifty.ledger.stores.base import LedgerStore


def open_ledger_store(config: LedgerConfig, path: str | Path | None = None) -> LedgerStore:
    """``path`` overrides ``config.path`` for SQLite; PostgreSQL uses ``config.dsn``."""
    if config.store == "postgres":
        from thrifty.ledger.stores.postgres import PostgresLedgerStore

        return PostgresLedgerStore(str(config.dsn))
    from thrifty.ledger.stores.sqlite import SqliteLedgerStore

    # one try waits at most a second for a lock; the writer retries up to write_timeout_s
    return SqliteLedgerStore(path or config.path, lock_timeout_s=min(1.0, config.write_timeout_s))
