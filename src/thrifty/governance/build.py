"""Build :class:`Admission` from its sections: open only the stores something can use."""

from __future__ import annotations

from thrifty.governance.admit import Admission
from thrifty.governance.budgets.select import open_budget_stores
from thrifty.governance.config import AuthConfig, GovernanceConfig
from thrifty.governance.keys.auth import KeyAuthenticator
from thrifty.governance.keys.base import KeyStore
from thrifty.stores.config import RedisConfig

__all__ = ["build_admission"]


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
    budgets, rates = open_budget_stores(section, redis, workers=workers, ephemeral=ephemeral)
    alerts = None
    if section.alerts.webhook_url:
        from thrifty.governance.budgets.alerts import BudgetAlerts

        alerts = BudgetAlerts(section.alerts, budgets)
    return Admission(section, auth, budgets, rates, alerts)
