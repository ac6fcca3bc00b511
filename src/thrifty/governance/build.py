"""Build :class:`Admission` from config: open only the stores something can use."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from thrifty.governance.admit import Admission
from thrifty.governance.budgets.base import BudgetStore, RateLimitStore
from thrifty.governance.keys.auth import KeyAuthenticator
from thrifty.registry import ModelRegistry

if TYPE_CHECKING:
    from thrifty.config.schema import ThriftyConfig

__all__ = ["build_admission"]

log = logging.getLogger(__name__)


def build_admission(
    config: ThriftyConfig, registry: ModelRegistry, *, ephemeral: bool = False
) -> Admission:
    """``ephemeral`` (replay): budgets and rate limits in memory, starting empty."""
    section = config.governance
    keys = None
    if not ephemeral:  # replay authenticates no one
        from thrifty.governance.keys.select import open_key_store

        keys = open_key_store(config.governance, config.ledger)
    auth = KeyAuthenticator(config.auth, keys)
    if not section.needs_store:
        return Admission(config, registry, auth)
    if ephemeral or section.store == "memory":
        from thrifty.governance.budgets.memory import MemoryBudgetStore, MemoryRateLimitStore

        if config.server.workers > 1 and not ephemeral:
            log.warning(
                "governance.store is memory but server.workers > 1: each worker keeps its own "
                "budgets and rate limits; use store: sqlite to share them"
            )

        budgets: BudgetStore = MemoryBudgetStore()
        rates: RateLimitStore = MemoryRateLimitStore()
    elif section.store == "redis":
        from thrifty.governance.budgets.redis import RedisBudgetStore, RedisRateLimitStore
        from thrifty.stores.redis import RedisLink

        budgets = RedisBudgetStore(RedisLink(config.redis))
        rates = RedisRateLimitStore(RedisLink(config.redis))
    else:
        from thrifty.governance.budgets.sqlite import SqliteBudgetStore, SqliteRateLimitStore

        budgets = SqliteBudgetStore(section.store_path)
        rates = SqliteRateLimitStore(section.store_path)
    alerts = None
    if section.alerts.webhook_url:
        from thrifty.governance.budgets.alerts import BudgetAlerts

        alerts = BudgetAlerts(section.alerts, budgets)
    return Admission(config, registry, auth, budgets, rates, alerts)
