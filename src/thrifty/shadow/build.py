"""Build the shadow runner from the config sections it reads."""

from __future__ import annotations

from thrifty.governance.budgets.base import BudgetStore
from thrifty.governance.config import GovernanceConfig
from thrifty.ledger.redact import Redactor
from thrifty.ledger.sink import LedgerSink
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.registry import ModelRegistry
from thrifty.routing.config import RoutingConfig
from thrifty.shadow.config import ShadowConfig
from thrifty.shadow.runner import ShadowRunner
from thrifty.stores.config import RedisConfig


def build_shadow(
    section: ShadowConfig,
    routing: RoutingConfig,
    governance: GovernanceConfig,
    redis: RedisConfig,
    registry: ModelRegistry,
    dispatch: DispatchStage,
    ledger: LedgerSink,
    *,
    redact: tuple[str, ...] | list[str] = (),
) -> ShadowRunner:
    """The runner; candidates default to the router's (``routing.candidates``, else every
    chat model). The daily budget lives in ``governance.store`` (shared by replicas when
    that is Redis or SQLite, and governance keeps budgets), under the bucket ``shadow``."""
    candidates = (
        section.candidates
        or routing.candidates
        or [
            n
            for n in registry.names
            if (p := registry.get(n).price) is None or p.mode in (None, "chat")
        ]
    )
    return ShadowRunner(
        section, registry, dispatch, ledger, _budget_store(governance, redis),
        candidates=candidates,
        default_output_tokens=governance.default_max_output_tokens,
        redactor=Redactor(redact),
    )  # fmt: skip


def _budget_store(governance: GovernanceConfig, redis: RedisConfig) -> BudgetStore:
    """The budget store of ``governance.store`` when the gateway keeps budgets at all;
    else (and for ``memory``) this process's own memory store."""
    if not governance.needs_store:
        from thrifty.governance.budgets.memory import MemoryBudgetStore

        return MemoryBudgetStore()
    if governance.store == "redis":
        from thrifty.governance.budgets.redis import RedisBudgetStore
        from thrifty.stores.redis import RedisLink

        return RedisBudgetStore(RedisLink(redis))
    if governance.store == "sqlite":
        from thrifty.governance.budgets.sqlite import SqliteBudgetStore

        return SqliteBudgetStore(governance.store_path)
    from thrifty.governance.budgets.memory import MemoryBudgetStore

    return MemoryBudgetStore()
