"""Ledger stores: where request records are kept."""

from __future__ import annotations

from thrifty.ledger.stores.base import GROUP_BY, LedgerStore
from thrifty.ledger.stores.sqlite import SqliteLedgerStore

__all__ = ["GROUP_BY", "LedgerStore", "SqliteLedgerStore"]
