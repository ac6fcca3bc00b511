"""Build :class:`Admission` from its sections: open only the stores something can use."""

from __future__ import annotations

import logging

from thrifty.governance.admit import Admission
from thrifty.governance.budgets.base import BudgetStore, RateLimitStore
from thrifty.governance.config import AuthConfig, GovernanceConfig
from thrifty.governance.keys.auth import KeyAuthenticator
from thrifty.governance.keys.base import KeyStore
from thrifty.stores.config import RedisConfig

__all__ = ["build_admission"]

log = logging.getLogger(__name__)


def build_admission(
    section: GovernanceConfig,
    auth_config: AuthConfig,
    keys: KeyStore | None,
    *,
    redis: RedisConfig,
    workers: int = 1,
    ephemeral: bool = False,
) -> Admission:
    """``keys``: the virtual key store (None: config keys only, as in replay, which
    authenticates no one); ``ephemeral`` (replay): budgets and rate limits in memory,
    starting empty; ``workers``: the gateway's processes (a memory store is per process)."""
    auth = KeyAuthenticator(auth_config, keys)
    if not section.needs_store:
        return Admission(section, auth)
    if ephemeral or section.store == "memory":
        from thrifty.governance.budgets.memory import MemoryBudgetStore, MemoryRateLimitStore

        if workers > 1 and not ephemeral:
            log.warning(
                "governance.store is memory but server.workers > 1: each worker keeps its own "
                "budgets and rate limits; use store: sqlite to share them"
            )

        budgets: BudgetStore = MemoryBudgetStore()
        rates: RateLimitStore = MemoryRateLimitStore()
    elif section.store == "redis":
        from thrifty.governance.budgets.redis import RedisBudgetStore, RedisRateLimitStore
        from thrifty.stores.redis import RedisLink

        budgets = RedisBudgetStore(RedisLink(redis))
        rates = RedisRateLimitStore(RedisLink(redis))
    else:
        from thrifty.governance.budgets.sqlite import SqliteBudgetStore, SqliteRateLimitStore

        budgets = SqliteBudgetStore(section.store_path)
        rates = SqliteRateLimitStore(section.store_path)
    alerts = None
    if section.alerts.webhook_url:
        from thrifty.governance.budgets.alerts import BudgetAlerts

        alerts = BudgetAlerts(section.alerts, budgets)
    return Admission(section, auth, budgets, rates, alerts)
