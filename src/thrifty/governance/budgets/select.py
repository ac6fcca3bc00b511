"""Open the budget and rate-limit stores the config names: memory, SQLite or Redis."""

from __future__ import annotations

import logging

from thrifty.governance.budgets.base import BudgetStore, RateLimitStore
from thrifty.governance.config import GovernanceConfig
from thrifty.stores.config import RedisConfig

__all__ = ["open_budget_stores"]

log = logging.getLogger(__name__)


def open_budget_stores(
    section: GovernanceConfig, redis: RedisConfig, *, workers: int = 1, ephemeral: bool = False
) -> tuple[BudgetStore, RateLimitStore]:
    """``(budgets, rates)`` in ``governance.store``; ``ephemeral`` (replay): in memory,
    starting empty; ``workers``: the gateway's processes (a memory store is per process)."""
    if ephemeral or section.store == "memory":
        from thrifty.governance.budgets.memory import MemoryBudgetStore, MemoryRateLimitStore

        if workers > 1 and not ephemeral:
            log.warning(
                "governance.store is memory but server.workers > 1: each worker keeps its own "
                "budgets and rate limits; use store: sqlite to share them"
            )
        return MemoryBudgetStore(), MemoryRateLimitStore()
    if section.store == "redis":
        from thrifty.governance.budgets.redis import RedisBudgetStore, RedisRateLimitStore
        from thrifty.stores.redis import RedisLink

        return RedisBudgetStore(RedisLink(redis)), RedisRateLimitStore(RedisLink(redis))
    from thrifty.governance.budgets.sqlite import SqliteBudgetStore, SqliteRateLimitStore

    timeout = section.store_lock_timeout_s
    return (
        SqliteBudgetStore(section.store_path, timeout),
        SqliteRateLimitStore(section.store_path, timeout),
    )
