"""Owns everything a running Thrifty needs: providers, registry, ledger, pipeline.

Built from a validated config by the gateway (in its lifespan) and by the library (on
first use); ``aclose`` releases connections and flushes the ledger.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from thrifty.config.schema import ThriftyConfig
from thrifty.governance.admit import Plan
from thrifty.governance.build import build_admission
from thrifty.governance.keys.base import key_id_of_digest
from thrifty.governance.keys.identity import ANONYMOUS, Caller, Overrides
from thrifty.governance.keys.overrides import apply_overrides
from thrifty.ledger.sink import LedgerSink
from thrifty.ledger.stores.select import open_ledger_store
from thrifty.ledger.writer import LedgerWriter
from thrifty.logs import config_secrets, register_secrets
from thrifty.pipeline.context import Context, Reply
from thrifty.pipeline.requests import build_context
from thrifty.providers.base import Provider
from thrifty.providers.openai_http import OpenAIHTTPProvider
from thrifty.registry import ModelRegistry
from thrifty.techniques import build_pipeline


def key_id(key: str) -> str:
    """A stable, non-reversible id for a caller key, safe to store and show."""
    return key_id_of_digest(hashlib.sha256(key.encode()).digest())


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
                name: OpenAIHTTPProvider(name, provider)
                for name, provider in config.providers.items()
            }
        )
        self.ledger: LedgerSink = ledger or LedgerWriter(
            open_ledger_store(config.ledger, ledger_path),
            flush_interval=config.ledger.flush_interval_ms / 1000,
        )
        self._ephemeral = ephemeral
        self.admission = build_admission(config, self.registry, ephemeral=ephemeral)
        self.pipeline = build_pipeline(
            config, self.registry, self.providers, self.ledger, ephemeral=ephemeral
        )
        self._plans: dict[Overrides, Plan] = {Overrides(): Plan(config, self.pipeline)}
        if self.admission.budgets is not None:
            # the dashboard's hook: present only when there are budgets to show
            self.budget_usage = self.admission.budget_usage

    def authenticate(self, presented: str | None, *, enforce: bool = True) -> Caller:
        """The caller behind ``presented`` (see
        :class:`~thrifty.governance.keys.auth.KeyAuthenticator`); 401 for a missing, unknown
        or revoked key when auth is on."""
        return self.admission.authenticate(presented, enforce=enforce)

    def is_admin(self, presented: str | None) -> bool:
        """Whether ``presented`` is one of ``auth.admin_keys`` (constant-time compare).

        No admin keys configured means no admin access at all, even with auth off.
        """
        return self.admission.auth.is_admin(presented)

    def plan_for(self, overrides: Overrides) -> Plan:
        """The pipeline for a set of overrides, built on first use and kept."""
        plan = self._plans.get(overrides)
        if plan is None:
            config = apply_overrides(self.config, overrides)
            pipeline = build_pipeline(
                config, self.registry, self.providers, self.ledger, ephemeral=self._ephemeral
            )
            plan = self._plans[overrides] = Plan(config, pipeline)
        return plan

    async def run(self, ctx: Context, caller: Caller = ANONYMOUS) -> Reply:
        """Admit ``ctx`` for ``caller`` (model, rate limits, budget), run it, settle it."""
        return await self.admission.run(ctx, caller, self.plan_for(caller.overrides))

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
        for provider in self.providers.values():
            await provider.close()
        self.ledger.close()
