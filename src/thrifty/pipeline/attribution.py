"""One request's baseline, and every dollar of baseline − cost booked to a named cause.

The baseline (docs/ledger.md) is what the caller would have paid sending the request as
is to the baseline model: the served tokens (the answer, or what was streamed before a
cut; plus what compression removed) at that model's prices, plus the billed failures
of the baseline model itself (a timeout, a cut stream: sent as is, the caller meets
them too; a billed failure of another model is the loss of whoever chose that model).
Cache reads and writes are at list price (cached input billed as uncached) only when
Thrifty placed the breakpoints (``prompt_cache``): a caller's own breakpoints or a
provider's automatic caching would have served the request sent as is the same way, so
the baseline keeps them as billed and they are no saving of Thrifty's
(``baseline_usage``). Savings are the difference, split along
one chain of prices so the parts add up to it exactly on every row::

    P(M0, U+R as baseline) ─ prompt_cache ─► P(M0, U+R) ─ compression ─► P(M0, U)
      ─ the model's cause ─► P(A, U) ─ the answer's cause ─► cost of the answer attempt

and each overhead attempt (a judge, a rejected cascade tier, a verifier, a summary, a
packed call's share) is its technique's loss. ``M0`` is the baseline model, ``A`` the
model that answered, ``U`` the answer's usage, ``R`` the removed input. The model's cause
is whoever chose ``A``: the cache that answered, ``fallback`` (the chosen model failed),
``cascade`` (it moved off where it started, or it ran without routing), ``routing``
(only when its pick answered), ``default_model`` (an ``auto`` request without routing).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from thrifty.errors import ThriftyError
from thrifty.pipeline.context import Context, Reply
from thrifty.pricing import cost as price_usage
from thrifty.registry import ModelRegistry, ResolvedModel
from thrifty.usage import Usage

__all__ = [
    "CAUSES",
    "OVERHEAD_CAUSES",
    "OWN_PURPOSES",
    "account",
    "baseline_usage",
    "list_price",
    "overhead_cause",
]

log = logging.getLogger(__name__)

#: Every cause a saving may be booked to, in report order.
CAUSES: tuple[str, ...] = (
    "routing", "cascade", "exact_cache", "semantic_cache", "compression", "batching",
    "prompt_cache", "fallback", "default_model",
)  # fmt: skip

#: Attempts made for the caller's own request (the answer, its retries and fallbacks).
OWN_PURPOSES = frozenset({"main", "retry", "fallback"})

#: Which cause an overhead attempt's cost counts against (by ``purpose``).
OVERHEAD_CAUSES: Mapping[str, str] = {
    "cascade": "cascade",
    "judge": "cascade",
    "cache_verify": "semantic_cache",
    "embed": "semantic_cache",
    "summarise": "compression",
    "classify": "routing",
    "batch": "batching",
}


def overhead_cause(purpose: str) -> str:
    """The cause an attempt of ``purpose`` is overhead of (an unknown purpose: itself)."""
    return OVERHEAD_CAUSES.get(purpose, purpose)


def list_price(usage: Usage) -> Usage:
    """``usage`` with its cached reads and cache writes billed as plain input (itself
    when it has none: ``Usage`` is frozen, and replay calls this on every row)."""
    if not usage.cached_input_tokens and not usage.cache_write_tokens:
        return usage
    return replace(usage, cached_input_tokens=0, cache_write_tokens=0)


def baseline_usage(usage: Usage, techniques: Mapping[str, Any]) -> Usage:
    """The usage the baseline prices: its cache discounts removed (``list_price``) only
    when Thrifty asked for them (``prompt_cache`` noted); caching the caller or the
    provider did on its own is not Thrifty's doing, and the baseline keeps it."""
    return list_price(usage) if "prompt_cache" in techniques else usage


def _price(usage: Usage, model: ResolvedModel) -> float | None:
    return None if model.price is None else price_usage(usage, model.price).total


def _model_cause(ctx: Context, reply: Reply) -> str | None:
    """Who chose the model that answered (None: nobody; the baseline model answered)."""
    cache = ctx.techniques.get("cache") or {}
    if reply.provider == "cache" and cache.get("result") == "hit":
        return "semantic_cache" if cache.get("type") == "semantic" else "exact_cache"
    if reply.model != ctx.model:
        return "fallback"
    route: dict[str, Any] = ctx.techniques.get("route") or {}
    cascade: dict[str, Any] = ctx.techniques.get("cascade") or {}
    if cascade and (not route or cascade.get("accepted") != route.get("model")):
        return "cascade"
    if route:
        return "routing"
    if ctx.auto:
        return "default_model"
    return None


def account(
    ctx: Context, reply: Reply | None, registry: ModelRegistry
) -> tuple[float | None, dict[str, float]]:
    """(baseline cost, savings by cause) of ``ctx``'s request; (None, {}) when either
    side has an unknown price (an unpriced attempt makes the cost a lower bound)."""
    baseline = _baseline_model(ctx, registry)
    if baseline is None:
        return None, {}
    savings: dict[str, float] = {}
    answer = reply.attempt if reply is not None else None
    if answer is not None and answer.purpose not in OWN_PURPOSES:
        answer = None  # a share of a packed call: the batch's, below
    failed = 0.0
    for attempt in ctx.attempts:
        spent = attempt.cost or 0.0
        if attempt is answer or not spent:
            continue
        if attempt.purpose not in OWN_PURPOSES:
            _book(savings, overhead_cause(attempt.purpose), -spent)
        elif attempt.model == ctx.baseline_model:
            failed += spent  # a billed failure the caller, sending as is, meets too
        else:
            _book(savings, _failure_cause(ctx, attempt.model), -spent)
    if reply is None or reply.usage is None:
        return failed, savings  # no answer: the billed failures alone
    sent = _book_answer(ctx, reply, reply.usage, baseline, registry, savings)
    return (None, {}) if sent is None else (sent + failed, savings)


def _failure_cause(ctx: Context, model: str) -> str:
    """Who sent the request to ``model``, whose billed try failed: its loss."""
    route: dict[str, Any] = ctx.techniques.get("route") or {}
    cascade: dict[str, Any] = ctx.techniques.get("cascade") or {}
    if route and model == route.get("model"):
        return "routing"
    if model in {tier.get("model") for tier in cascade.get("tiers") or ()}:
        return "cascade"
    if ctx.auto and not route and model == ctx.model:
        return "default_model"
    return "fallback"


def _baseline_model(ctx: Context, registry: ModelRegistry) -> ResolvedModel | None:
    """The priced baseline model, or None when the row cannot have a baseline."""
    if any(a.unpriced for a in ctx.attempts):
        return None
    try:
        baseline = registry.get(ctx.baseline_model)
    except ThriftyError:
        return None
    return None if baseline.price is None else baseline


def _book_answer(
    ctx: Context,
    reply: Reply,
    usage: Usage,
    baseline: ResolvedModel,
    registry: ModelRegistry,
    savings: dict[str, float],
) -> float | None:
    """Book the chain from the request as sent to the answer's cost; returns the sent
    request's baseline price (None: a price is unknown)."""
    served = _served(usage, ctx.removed_input, baseline, ctx.techniques)
    if served is None:
        return None
    full, billed, as_billed = served
    cause = _model_cause(ctx, reply)
    if cause in ("exact_cache", "semantic_cache"):  # no model call: all of it
        _book(savings, cause, full)
        return full
    if full != billed:
        _book(savings, "prompt_cache", full - billed)
    if ctx.removed_input is not None:
        _book(savings, "compression", billed - as_billed)
    try:
        answered = _price(usage, registry.get(reply.model))
    except ThriftyError:
        answered = None
    if answered is None:
        return None
    _book(savings, cause, as_billed - answered)
    answer = reply.attempt if reply.attempt and reply.attempt.purpose in OWN_PURPOSES else None
    paid = (answer.cost or 0.0) if answer is not None else 0.0
    if answer is None or answered != paid:
        _book(savings, "batching" if "batch" in ctx.techniques else cause, answered - paid)
    return full


def _book(savings: dict[str, float], cause: str | None, value: float) -> None:
    if cause is not None:
        savings[cause] = savings.get(cause, 0.0) + value
    elif value:  # nothing changed the model, so this is $0: a gap here is a bug
        log.warning("a saving without a cause", extra={"value": value})
        savings["unattributed"] = savings.get("unattributed", 0.0) + value


def _served(
    usage: Usage, removed: Usage | None, baseline: ResolvedModel, techniques: Mapping[str, Any]
) -> tuple[float, float, float] | None:
    """The baseline model's price of the request as sent (the served tokens plus the
    removed input) at the baseline's prices (``baseline_usage``) and as billed (cache
    discounts applied), and of the served tokens alone as billed."""
    sent = usage + removed if removed is not None else usage
    billed = _price(sent, baseline)
    listed = baseline_usage(sent, techniques)
    # usually one usage three times (nothing removed, no cache discount): priced once
    full = billed if listed is sent else _price(listed, baseline)
    as_billed = billed if usage is sent else _price(usage, baseline)
    if billed is None or full is None or as_billed is None:
        return None
    return full, billed, as_billed
