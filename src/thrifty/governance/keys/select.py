"""Open the key store the config names: a SQLite file (default) or PostgreSQL (replicas)."""

from __future__ import annotations

from thrifty.errors import ConfigError
from thrifty.governance.config import GovernanceConfig
from thrifty.governance.keys.base import KeyStore
from thrifty.ledger.config import LedgerConfig

__all__ = ["open_key_store"]


def open_key_store(section: GovernanceConfig, ledger: LedgerConfig) -> KeyStore | None:
    """The configured store, or None when virtual keys are off.

    ``keys_store: postgres`` uses ``governance.keys_dsn``, else ``ledger.dsn``: the keys
    then sit next to the ledger that refers to them.
    """
    if section.keys_store == "postgres":
        dsn = section.keys_dsn or ledger.dsn
        if not dsn:
            raise ConfigError(
                "governance.keys_dsn: keys_store 'postgres' needs a dsn "
                "(or ledger.dsn to share the ledger's database)"
            )
        from thrifty.governance.keys.postgres import PostgresKeyStore

        return PostgresKeyStore(dsn)
    if section.keys_path:
        from thrifty.governance.keys.sqlite import SqliteKeyStore

        return SqliteKeyStore(section.keys_path, section.store_lock_timeout_s)
    return None
