"""Admission for provider batch jobs: a job is let in whole, or not at all.

At submit (``POST /v1/batches``, ``thrifty batch submit``), in this order:

* every line's model must be one the key may use (403 ``model_not_allowed`` naming the
  line's ``custom_id``);
* the lines count against the key's rate limits: one request per line, their prompt
  tokens (a job larger than a whole minute's limit is refused for good);
* the job reserves the worst case of all its lines at batch prices in every budget
  bucket, in one atomic step (429 ``budget_exceeded`` naming the budget).

The reservation must outlive the job, so its TTL is the completion window plus
``governance.reservation_ttl_s``, and it is kept in the job store as JSON: whichever
process first sees the job finished (completed, failed, expired or cancelled) settles it
to the sum of its result lines' batch costs, which releases the rest.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from thrifty.errors import InvalidRequest, PermissionDenied, RateLimited, ThriftyError
from thrifty.governance.admit import Admission, budget_error, rate_error
from thrifty.governance.budgets.base import BudgetBucket, BudgetExceeded, Reservation
from thrifty.governance.budgets.buckets import buckets_for
from thrifty.governance.keys.identity import Caller
from thrifty.pipeline.context import CHAT
from thrifty.pipeline.prices import call_cost
from thrifty.pipeline.worst_case import Estimate, prompt_tokens
from thrifty.registry import ModelRegistry, ResolvedModel

__all__ = ["JobAdmission", "batch_line_cost", "estimate_lines"]

log = logging.getLogger(__name__)

_MINUTE = 60.0
_WINDOW = re.compile(r"^(\d{1,4})h$")


def batch_line_cost(
    body: dict[str, Any], model: ResolvedModel, registry: ModelRegistry, default_output: int
) -> Estimate:
    """One provider batch line (a chat request sent as is): one call at batch prices."""
    tokens = prompt_tokens(body, CHAT, model)
    n = body.get("n")
    choices = n if isinstance(n, int) and n > 0 else 1
    cost = call_cost(registry, model.name, tokens, body, default_output, choices=choices,
                     batch=True)  # fmt: skip
    return Estimate(tokens, cost)


def estimate_lines(
    lines: dict[str, tuple[str, dict[str, Any]]], registry: ModelRegistry, default_output: int
) -> dict[str, list[Any]]:
    """custom_id -> [model, prompt tokens, worst cost at batch prices (None: unpriced)]."""
    out: dict[str, list[Any]] = {}
    for custom_id, (name, body) in lines.items():
        model = registry.get(name)
        try:
            worst = batch_line_cost(body, model, registry, default_output)
        except ThriftyError:  # no price: refused at submit only if a budget applies
            out[custom_id] = [name, 0, None]
            continue
        out[custom_id] = [name, worst.prompt_tokens, worst.cost_usd]
    return out


def window_s(completion_window: Any) -> float:
    """``"24h"`` -> seconds (OpenAI accepts only 24h today; anything else counts as 24h)."""
    match = _WINDOW.match(str(completion_window))
    return int(match.group(1)) * 3600.0 if match else 86_400.0


def _too_large(what: str, count: int, limit: int) -> RateLimited:
    return RateLimited(
        f"Batch too large: it has {count} {what} and this key may send {limit} {what} per "
        "minute. Split the file.",
        code="request_too_large",
        headers={"x-should-retry": "false"},
    )


class JobAdmission:
    """The admission steps of :class:`Admission`, for a whole job's lines at once."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    def check_models(self, caller: Caller, models: dict[str, str]) -> None:
        if caller.models is None:
            return
        for custom_id, name in models.items():
            if not caller.allows(name):
                raise PermissionDenied(
                    f"Line {custom_id!r}: this key may not use the model '{name}'; it may "
                    f"use: {', '.join(sorted(caller.models)) or 'no models'}.",
                    param="model",
                    code="model_not_allowed",
                )

    async def hold(
        self, caller: Caller, lines: dict[str, list[Any]], ttl_s: float
    ) -> dict[str, Any] | None:
        """Rate limits and the job's reservation; the hold to settle (None: nothing held)."""
        admission = self._admission
        self.check_models(caller, {cid: line[0] for cid, line in lines.items()})
        rpm, tpm = admission.limits(caller)
        governance = admission.governance
        buckets: tuple[BudgetBucket, ...] = ()
        if admission.budgets is not None:
            buckets = buckets_for(caller, caller.team, caller.tags, governance.budgets, time.time())
        if not (rpm or tpm or buckets):
            return None
        tokens = sum(int(line[1]) for line in lines.values())
        rates = admission.rates
        if rpm and rates is not None:
            if len(lines) > rpm:
                raise _too_large("requests", len(lines), rpm)
            decision = await rates.hit(f"rpm:{caller.key_id}", rpm, len(lines), _MINUTE)
            if not decision.allowed:
                raise rate_error("requests", rpm, decision.retry_after_s)
        if tpm and rates is not None:
            if tokens > tpm:
                raise _too_large("tokens", tokens, tpm)
            decision = await rates.hit(f"tpm:{caller.key_id}", tpm, tokens, _MINUTE)
            if not decision.allowed:
                raise rate_error("tokens", tpm, decision.retry_after_s)
        held: dict[str, Any] = {"key_id": caller.key_id, "tpm": tpm, "prompt_tokens": tokens}
        if buckets:
            assert admission.budgets is not None
            unpriced = [cid for cid, line in lines.items() if line[2] is None]
            if unpriced:
                raise InvalidRequest(
                    f"Line {unpriced[0]!r}: model {lines[unpriced[0]][0]!r} has no known "
                    "price, and a budget applies to this key: set models.<name>.price in "
                    "the gateway's config",
                    param="model",
                    code="model_unpriced",
                )
            amount = sum(float(line[2]) for line in lines.values())
            try:
                reservation = await admission.budgets.reserve(buckets, amount, ttl_s)
            except BudgetExceeded as exc:
                raise budget_error(exc) from None
            held["reservation"] = _dump(reservation)
        return held

    async def settle(self, held: dict[str, Any], actual_usd: float, tokens_used: int) -> None:
        """The job's end: reservation -> actual; tokens beyond the prompts to tokens/min.
        Never raises (an unsettled reservation expires, counted as spent)."""
        admission = self._admission
        try:
            if held.get("reservation") and admission.budgets is not None:
                reservation = _load(held["reservation"])
                await admission.budgets.settle(reservation, actual_usd)
                admission.watch(reservation.buckets)
            extra = tokens_used - int(held.get("prompt_tokens") or 0)
            if held.get("tpm") and admission.rates is not None and extra > 0:
                await admission.rates.hit(f"tpm:{held['key_id']}", 2**62, extra, _MINUTE)
        except Exception:
            log.exception("settling a batch job failed", extra={"key_id": held.get("key_id")})

    async def release(self, held: dict[str, Any] | None) -> None:
        """The job never started (the provider refused it): nothing was spent."""
        if held is not None:
            await self.settle({**held, "tpm": None}, 0.0, 0)


def _dump(reservation: Reservation) -> dict[str, Any]:
    return {
        "id": reservation.id,
        "amount_usd": reservation.amount_usd,
        "buckets": [
            [b.scope, b.period, b.window, b.limit_usd, b.resets_at] for b in reservation.buckets
        ],
    }


def _load(data: dict[str, Any]) -> Reservation:
    buckets = tuple(BudgetBucket(*bucket) for bucket in data["buckets"])
    return Reservation(str(data["id"]), buckets, float(data["amount_usd"]))
