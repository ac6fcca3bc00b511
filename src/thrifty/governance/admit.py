"""Let a request in, run it, settle it: the one admission path of gateway, library and
replay, run by the pipeline's first stage (:class:`~thrifty.governance.stage.GovernanceStage`).

Order (each step refuses with an OpenAI-style error, nothing after it runs)::

    authenticate   key -> Caller (config key, virtual key, anonymous)   401  (Runtime)
    model allowed  the key's model list (``auto``: every model it may pick)  403
    rate limits    requests/min, then prompt tokens/min, per key          429 + Retry-After
    reserve        worst-case cost in every budget bucket, atomically     429 (names the budget)
    pipeline       ledger -> cache -> route -> cascade -> dispatch
    settle         when the ledger row is final (a stream: when it ends; errors too):
                   reservation -> actual cost; completion tokens added to tokens/min;
                   budget alerts checked in the background

The worst case is what the pipeline's own stages declare
(:class:`~thrifty.pipeline.worst_case.WorstCase`).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from thrifty.errors import PermissionDenied, RateLimited
from thrifty.governance.budgets.alerts import BudgetAlerts
from thrifty.governance.budgets.base import (
    BucketUsage,
    BudgetBucket,
    BudgetExceeded,
    BudgetStore,
    RateLimitStore,
    Reservation,
)
from thrifty.governance.budgets.buckets import buckets_for, window
from thrifty.governance.config import GovernanceConfig
from thrifty.governance.keys.auth import KeyAuthenticator
from thrifty.governance.keys.identity import Caller
from thrifty.ledger.record import attempts_cost
from thrifty.pipeline.closing import ClosingStream
from thrifty.pipeline.context import Context, Reply
from thrifty.pipeline.worst_case import Estimate, WorstCase

__all__ = ["Admission", "budget_error", "rate_error"]

log = logging.getLogger(__name__)

_MINUTE = 60.0
_UNLIMITED = sys.maxsize  # a hit that only counts (tokens known after the fact)


def _when(ts: float | None) -> str:
    if ts is None:
        return "never (a lifetime budget)"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def budget_error(exc: BudgetExceeded) -> RateLimited:
    """429 that names the budget and when it resets; the SDKs are told not to retry."""
    usage, bucket = exc.usage, exc.usage.bucket
    left = max(0.0, bucket.limit_usd - usage.spent_usd - usage.reserved_usd)
    message = (
        f"Budget exceeded: {bucket.scope} has a {bucket.period} budget of "
        f"${bucket.limit_usd:.4f} (window {bucket.window}); spent ${usage.spent_usd:.4f}, "
        f"${usage.reserved_usd:.4f} reserved by requests in flight, ${left:.4f} left, and "
        f"this request may cost up to ${exc.requested_usd:.4f}. "
        f"It resets at {_when(bucket.resets_at)}."
    )
    headers = {"x-should-retry": "false", "x-thrifty-budget": bucket.scope}
    if bucket.resets_at is not None:
        headers["x-thrifty-budget-resets-at"] = str(int(bucket.resets_at))
    return RateLimited(message, code="budget_exceeded", headers=headers)


def rate_error(what: str, limit: int, retry_after_s: float) -> RateLimited:
    seconds = max(1, math.ceil(retry_after_s))
    return RateLimited(
        f"Rate limit reached: this key may send {limit} {what} per minute. "
        f"Try again in {seconds} s.",
        headers={"retry-after": str(seconds), "retry-after-ms": str(int(retry_after_s * 1000))},
    )


class Admission:
    """Owns the key authenticator and the budget and rate-limit stores of one runtime."""

    def __init__(
        self,
        governance: GovernanceConfig,
        auth: KeyAuthenticator,
        budgets: BudgetStore | None = None,
        rates: RateLimitStore | None = None,
        alerts: BudgetAlerts | None = None,
    ) -> None:
        self._governance = governance
        self.auth = auth
        self.budgets = budgets
        self.rates = rates
        self._alerts = alerts

    def authenticate(self, presented: str | None, *, enforce: bool = True) -> Caller:
        return self.auth.authenticate(presented, enforce=enforce)

    async def authenticate_async(self, presented: str | None, *, enforce: bool = True) -> Caller:
        return await self.auth.authenticate_async(presented, enforce=enforce)

    @property
    def active(self) -> bool:
        """Whether anything can be refused or reserved: virtual keys (their model lists),
        budgets or rate limits. Without, the pipeline has no governance stage."""
        return self.budgets is not None

    def check_model(self, ctx: Context, caller: Caller, worst: WorstCase) -> None:
        """403 when the key may not use what the request asks for (``worst``: the stages
        of the pipeline that will run it say which models they may pick)."""
        if caller.models is None:
            return
        hint = ""
        if ctx.auto:
            allowed = "auto" in caller.models or worst.candidate_models(ctx) <= set(caller.models)
            name = "auto"
        else:
            allowed = caller.allows(ctx.requested_model)
            name = ctx.requested_model
            if allowed:  # a cascade's higher tier or routing's pick may answer instead
                widened = sorted(m for m in worst.candidate_models(ctx) if not caller.allows(m))
                if widened:
                    allowed, name = False, widened[0]
                    hint = (
                        f" The request for '{ctx.requested_model}' may be answered by"
                        f" '{name}' (routing or a cascade tier); send"
                        " x-thrifty-route: off and x-thrifty-cascade: off to use the model"
                        " as named."
                    )
        if allowed:
            refused = sorted(m for m in worst.header_models(ctx) if not caller.allows(m))
            if refused:
                allowed, name = False, refused[0]
        if not allowed:
            raise PermissionDenied(
                f"This key may not use the model '{name}'; it may use: "
                f"{', '.join(sorted(caller.models)) or 'no models'}.{hint}",
                param="model",
                code="model_not_allowed",
            )

    async def admit(
        self,
        ctx: Context,
        caller: Caller,
        worst: WorstCase,
        call: Callable[[Context], Awaitable[Reply]],
    ) -> Reply:
        """Admit ``ctx`` (its worst case as ``worst`` prices it), ``call`` it, settle what
        it added to ``ctx.attempts``."""
        self.check_model(ctx, caller, worst)
        rpm, tpm = self.limits(caller)
        buckets = (
            buckets_for(caller, ctx.team, ctx.tags, self._governance.budgets, ctx.ts)
            if self.budgets is not None
            else ()
        )
        if not (rpm or tpm or buckets):
            return await call(ctx)
        guess = worst.estimate(ctx, priced=bool(buckets))
        await self._rate_limit(caller, rpm, tpm, guess)
        reservation = None
        if buckets:
            assert self.budgets is not None
            try:
                reservation = await self.budgets.reserve(
                    buckets, guess.cost_usd, self._governance.reservation_ttl_s
                )
            except BudgetExceeded as exc:
                raise budget_error(exc) from None
            budget = ctx.techniques.setdefault("budget", {})
            budget["reserved_usd"] = budget.get("reserved_usd", 0.0) + guess.cost_usd
        first = len(ctx.attempts)
        try:
            reply = await call(ctx)
        except BaseException:
            await self._settle(ctx, caller, tpm, guess, reservation, first)
            raise
        if reply.chunks is None:
            await self._settle(ctx, caller, tpm, guess, reservation, first)
        else:
            reply.chunks = ClosingStream(
                self._settle_after(reply.chunks, ctx, caller, tpm, guess, reservation, first)
            )
        return reply

    @property
    def governance(self) -> GovernanceConfig:
        return self._governance

    def watch(self, buckets: tuple[BudgetBucket, ...]) -> None:
        """Check ``buckets`` against the alert thresholds (in the background)."""
        if self._alerts is not None:
            self._alerts.watch(buckets)

    def limits(self, caller: Caller) -> tuple[int | None, int | None]:
        """(requests, tokens) per minute for ``caller``; None: not limited."""
        if self.rates is None or caller.key_id is None:
            return None, None
        defaults = self._governance.rate_limits
        return (
            caller.requests_per_minute or defaults.requests_per_minute,
            caller.tokens_per_minute or defaults.tokens_per_minute,
        )

    async def _rate_limit(
        self, caller: Caller, rpm: int | None, tpm: int | None, guess: Estimate
    ) -> None:
        rates = self.rates
        if rates is None:
            return
        if rpm:
            decision = await rates.hit(f"rpm:{caller.key_id}", rpm, 1, _MINUTE)
            if not decision.allowed:
                raise rate_error("requests", rpm, decision.retry_after_s)
        if not tpm:
            return
        if guess.prompt_tokens > tpm:
            raise RateLimited(
                f"Request too large: its prompt has about {guess.prompt_tokens} tokens and this "
                f"key may send {tpm} tokens per minute.",
                code="request_too_large",
                headers={"x-should-retry": "false"},
            )
        decision = await rates.hit(f"tpm:{caller.key_id}", tpm, guess.prompt_tokens, _MINUTE)
        if not decision.allowed:
            raise rate_error("tokens", tpm, decision.retry_after_s)

    async def _settle_after(
        self,
        chunks: AsyncIterator[dict[str, Any]],
        ctx: Context,
        caller: Caller,
        tpm: int | None,
        guess: Estimate,
        reservation: Reservation | None,
        first: int,
    ) -> AsyncGenerator[dict[str, Any], None]:
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]  # the ledger row is written here
            await self._settle(ctx, caller, tpm, guess, reservation, first)

    async def _settle(
        self,
        ctx: Context,
        caller: Caller,
        tpm: int | None,
        guess: Estimate,
        reservation: Reservation | None,
        first: int,
    ) -> None:
        """Never fails the request: a store error is logged, and an unsettled reservation
        expires after ``reservation_ttl_s``, counted as spent (the safe side)."""
        attempts = ctx.attempts[first:]
        try:
            if reservation is not None and self.budgets is not None:
                actual, _ = attempts_cost(attempts)
                await self.budgets.settle(reservation, actual)
                if self._alerts is not None:
                    self._alerts.watch(reservation.buckets)
            if tpm and self.rates is not None:
                used = sum(
                    a.usage.input_tokens + a.usage.output_tokens for a in attempts if a.usage
                )
                if used > guess.prompt_tokens:
                    await self.rates.hit(
                        f"tpm:{caller.key_id}", _UNLIMITED, used - guess.prompt_tokens, _MINUTE
                    )
        except Exception:
            log.exception("settling a request failed", extra={"request_id": ctx.request_id})

    async def usage(self, buckets: tuple[BudgetBucket, ...]) -> list[BucketUsage]:
        """Spent and reserved USD of ``buckets`` (empty when no budget store is open)."""
        return await self.budgets.usage(buckets) if self.budgets is not None else []

    async def budget_usage(self) -> list[BucketUsage]:
        """Every configured budget and every active key's own, in its current window
        (the admin API's ``/admin/budgets`` and the dashboard's budget section)."""
        now = time.time()
        limits = [(b.scope, b.period, b.limit_usd) for b in self._governance.budgets]
        store = self.auth.store
        for key in store.list(include_revoked=False) if store is not None else ():
            limits += [(f"key:{key.id}", b.period, b.limit_usd) for b in key.budgets]
        buckets = []
        for scope, period, limit in limits:
            name, resets_at = window(period, now)
            buckets.append(BudgetBucket(scope, period, name, limit, resets_at))
        return await self.usage(tuple(buckets))

    async def aclose(self) -> None:
        if self._alerts is not None:
            await self._alerts.aclose()
        for store in (self.budgets, self.rates):
            if store is not None:
                await store.aclose()
        self.auth.close()
