"""Owns everything a running Thrifty needs: providers, registry, ledger, pipeline.

Built from a validated config by the gateway (in its lifespan) and by the library (on
first use); ``aclose`` releases connections and flushes the ledger.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thrifty.config.schema import ThriftyConfig
from thrifty.governance.build import build_admission
from thrifty.governance.keys.base import key_id_of_digest
from thrifty.governance.keys.identity import ANONYMOUS, Caller, Overrides
from thrifty.governance.stage import GovernanceStage
from thrifty.ledger.sink import LedgerSink
from thrifty.ledger.stores.select import open_ledger_store
from thrifty.ledger.writer import LedgerWriter
from thrifty.logs import config_secrets, register_secrets
from thrifty.pipeline.chain import Pipeline
from thrifty.pipeline.context import Context, Reply
from thrifty.pipeline.requests import build_context
from thrifty.providers.base import Provider
from thrifty.providers.build import build_provider
from thrifty.registry import ModelRegistry
from thrifty.shadow.runner import ShadowRunner
from thrifty.techniques import apply_overrides, build_pipeline


def key_id(key: str) -> str:
    """A stable, non-reversible id for a caller key, safe to store and show."""
    return key_id_of_digest(hashlib.sha256(key.encode()).digest())


@dataclass(frozen=True, slots=True)
class Plan:
    """A pipeline and the config it was built from (per-key overrides give other plans)."""

    config: ThriftyConfig
    pipeline: Pipeline


class Runtime:
    """One process's Thrifty. ``providers`` and ``ledger`` default to the configured HTTP
    upstreams and the configured ledger store; replay passes recorded-answer providers and a
    collecting sink instead, and everything else runs unchanged."""

    def __init__(
        self,
        config: ThriftyConfig,
        ledger_path: str | Path | None = None,
        *,
        providers: Mapping[str, Provider] | None = None,
        ledger: LedgerSink | None = None,
        ephemeral: bool = False,
    ) -> None:
        self.config = config
        register_secrets(config_secrets(config))  # never in a log line, whatever logs it
        self.registry = ModelRegistry.from_config(config)
        self.providers: dict[str, Provider] = (
            dict(providers)
            if providers is not None
            else {
                name: build_provider(name, provider) for name, provider in config.providers.items()
            }
        )
        self.ledger: LedgerSink = ledger or LedgerWriter(
            open_ledger_store(config.ledger, ledger_path),
            flush_interval=config.ledger.flush_interval_ms / 1000,
            max_queue=config.ledger.max_queue,
            write_timeout=config.ledger.write_timeout_s,
            shutdown_grace=config.ledger.shutdown_grace_s,
        )
        self._ephemeral = ephemeral
        keys = None
        if not ephemeral:  # replay authenticates no one
            from thrifty.governance.keys.select import open_key_store

            keys = open_key_store(config.governance, config.ledger)
        self.admission = build_admission(
            config.governance,
            config.auth,
            keys,
            redis=config.redis,
            workers=config.server.workers,
            ephemeral=ephemeral,
        )
        self.shadow: ShadowRunner | None = None
        if config.shadow.enabled and not ephemeral:  # replay never shadows
            from thrifty.pipeline.dispatch import DispatchStage
            from thrifty.shadow.build import build_shadow

            self.shadow = build_shadow(
                config.shadow, config.routing, config.governance, config.redis, self.registry,
                DispatchStage(self.registry, self.providers, config.retries), self.ledger,
                redact=config.ledger.redact,
            )  # fmt: skip
        self.pipeline = self._build(config)
        self._plans: dict[Overrides, Plan] = {Overrides(): Plan(config, self.pipeline)}
        if self.admission.budgets is not None:
            # the dashboard's hook: present only when there are budgets to show
            self.budget_usage = self.admission.budget_usage

    def authenticate(self, presented: str | None, *, enforce: bool = True) -> Caller:
        """The caller behind ``presented`` (see
        :class:`~thrifty.governance.keys.auth.KeyAuthenticator`); 401 for a missing, unknown
        or revoked key when auth is on."""
        return self.admission.authenticate(presented, enforce=enforce)

    async def authenticate_async(self, presented: str | None, *, enforce: bool = True) -> Caller:
        """:meth:`authenticate` for the event loop: a lookup that waits on the network
        (PostgreSQL key store) runs on a worker thread."""
        return await self.admission.authenticate_async(presented, enforce=enforce)

    def is_admin(self, presented: str | None) -> bool:
        """Whether ``presented`` is one of ``auth.admin_keys`` (constant-time compare).

        No admin keys configured means no admin access at all, even with auth off.
        """
        return self.admission.auth.is_admin(presented)

    def check_overrides(self, overrides: Overrides) -> None:
        """Raise ``InvalidRequest`` (naming the problem) when ``overrides`` do not fit this
        config; the admin API checks a key's overrides with it before storing the key."""
        apply_overrides(self.config, overrides)

    def plan_for(self, overrides: Overrides) -> Plan:
        """The pipeline for a set of overrides, built on first use and kept."""
        plan = self._plans.get(overrides)
        if plan is None:
            config = apply_overrides(self.config, overrides)
            plan = self._plans[overrides] = Plan(config, self._build(config))
        return plan

    def _build(self, config: ThriftyConfig) -> Pipeline:
        return build_pipeline(
            config,
            self.registry,
            self.providers,
            self.ledger,
            ephemeral=self._ephemeral,
            admission=self.admission,
            shadow=self.shadow,
        )

    async def run(self, ctx: Context, caller: Caller = ANONYMOUS) -> Reply:
        """Run ``ctx`` for ``caller`` through the caller's pipeline, whose first stage
        admits it (model, rate limits, budget) and settles it."""
        ctx.caller = caller
        return await self.plan_for(caller.overrides).pipeline.run(ctx)

    def check_model(self, ctx: Context, caller: Caller) -> None:
        """403 when ``caller`` may not use what ``ctx`` asks for under the default pipeline
        (``batch()`` checks its list once, before any call)."""
        first = self.pipeline.stages[0] if self.pipeline.stages else None
        if isinstance(first, GovernanceStage):  # none when nothing can be refused
            self.admission.check_model(ctx, caller, first.worst)

    def new_context(
        self,
        endpoint: str,
        body: Any,
        headers: dict[str, str],
        caller: Caller | None = None,
        request_id: str | None = None,
        *,
        key_id: str | None = None,
    ) -> Context:
        """Check a request against this config; unknown models fail before any work.

        The ledger's key, team and tags come from ``caller`` (the key's tags win over the
        request's; a key without a team takes the request's ``team`` tag); ``key_id`` alone
        is for callers without an identity (replay).
        """
        caller = caller or ANONYMOUS
        ctx = build_context(
            endpoint,
            body,
            headers,
            default_model=self.config.default_model,
            baseline_model=self.config.baseline_model,
            key_id=caller.key_id or key_id,
            request_id=request_id,
        )
        if caller.tags:
            ctx.tags.update(caller.tags)
        ctx.team = caller.team or ctx.tags.get("team")
        self.registry.get(ctx.model)
        return ctx

    async def aclose(self) -> None:
        for plan in self._plans.values():
            plan.pipeline.close()
        await self.admission.aclose()
        if self.shadow is not None:
            await self.shadow.aclose()
        for provider in self.providers.values():
            await provider.close()
        self.ledger.close()
