"""The most a request can cost, reserved against budgets before it runs.

The rule (also in ``docs/keys-and-budgets.md``): the reservation is the sum of the worst
cost of every call the configured pipeline may make for the request.

* **The answer.** One call: the prompt's tokens at the dearest input price plus the
  longest possible answer (``max_completion_tokens``/``max_tokens``, capped by the
  model's output limit; else the model's output limit; else
  ``governance.default_max_output_tokens``) at the dearest output price, times ``n``;
  the dearer of the model and its fallbacks (failed tries have no usage, so cost
  nothing). When routing may pick the model, the dearest candidate. When a cascade may
  climb, every tier is paid for, plus one judge call per checked tier
  (:mod:`thrifty.governance.side_calls`).
* **Side calls** before the answer: the semantic cache's verifier and abstractive
  summaries (:mod:`thrifty.governance.side_calls`).
* **Gateway window** (``x-thrifty-batch: window``): the request may pay a share of a
  packed call and then be asked alone. A share is at most the whole packed call, so it
  reserves the whole packed call (``max_batch_size`` questions of
  ``max_question_tokens``, their answer budgets, through the same answer rule) plus the
  answer as above.
* **Provider batch lines** (:func:`batch_line_cost`): one call at batch prices.

Prompts are counted exactly for OpenAI tokenizers (with the requested model's); other
families with o200k, padded by 25%. Images and audio are not counted (their price depends
on resolution): those requests may settle above their reservation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from thrifty.governance.prices import answer_tokens, call_cost
from thrifty.governance.side_calls import judge_cost, summary_cost, verify_cost
from thrifty.pipeline.context import CHAT, Context
from thrifty.registry import ModelRegistry, ResolvedModel
from thrifty.tokens import count_messages, count_text

if TYPE_CHECKING:
    from thrifty.config.schema import ThriftyConfig

__all__ = ["Estimate", "batch_line_cost", "candidate_models", "estimate", "prompt_tokens"]

_APPROXIMATE_PAD = 1.25


@dataclass(frozen=True, slots=True)
class Estimate:
    """``prompt_tokens`` (for tokens-per-minute limits) and the worst-case cost in USD."""

    prompt_tokens: int
    cost_usd: float


def _routes(ctx: Context, config: ThriftyConfig) -> bool:
    control = ctx.controls.get("route")
    applies = ctx.auto or ctx.requested_model in config.routing.applies_to
    return config.routing.enabled and ctx.endpoint == CHAT and applies and control != "off"


def _cascades(ctx: Context, config: ThriftyConfig) -> bool:
    applies = ctx.auto or ctx.requested_model in config.cascade.applies_to
    off = ctx.controls.get("cascade") == "off"
    return config.cascade.enabled and ctx.endpoint == CHAT and applies and not off


def _answer_models(ctx: Context, config: ThriftyConfig, registry: ModelRegistry) -> set[str]:
    """The models routing may send the request to (the model itself without routing)."""
    if not _routes(ctx, config):
        return {ctx.model}
    control = ctx.controls.get("route")
    if control:
        return {control}
    routing = config.routing
    models = set(routing.candidates) or {
        n
        for n in registry.names
        if (p := registry.get(n).price) is None or p.mode in (None, "chat")
    }
    return models | {m for names in routing.tasks.values() for m in names}


def candidate_models(ctx: Context, config: ThriftyConfig, registry: ModelRegistry) -> set[str]:
    """Every model the pipeline of ``config`` may call as this request's answer."""
    models = _answer_models(ctx, config, registry)
    if _cascades(ctx, config):
        models |= {tier.model for tier in config.cascade.tiers}
    return models


def prompt_tokens(body: dict[str, Any], endpoint: str, model: ResolvedModel) -> int:
    """The request's prompt tokens, padded by 25% when the count is approximate."""
    name = model.deployments[0].upstream_model
    if endpoint != CHAT:
        value = body.get("input")
        items = [value] if isinstance(value, str) else list(value or ())
        tokens, approximate = 0, False
        for item in items:
            if isinstance(item, str):
                counted = count_text(item, name)
                tokens += counted.tokens
                approximate = approximate or counted.approximate
            elif isinstance(item, list):  # already token ids
                tokens += len(item)
    else:
        counted = count_messages(body.get("messages") or [], name)
        tokens, approximate = counted.tokens, counted.approximate
        for extra in ("tools", "functions", "response_format"):
            if body.get(extra):
                tokens += count_text(orjson.dumps(body[extra]).decode(), name).tokens
    return math.ceil(tokens * _APPROXIMATE_PAD) if approximate else tokens


def _answer_cost(
    ctx: Context,
    config: ThriftyConfig,
    registry: ModelRegistry,
    tokens: int,
    body: dict[str, Any],
) -> float:
    """The answer: the dearest single model, or a whole cascade climb with its judges."""
    default = config.governance.default_max_output_tokens
    if ctx.endpoint != CHAT:
        return max(
            call_cost(registry, m, tokens, {"max_tokens": 0}, default, choices=0)
            for m in _answer_models(ctx, config, registry)
        )
    n = body.get("n")
    choices = n if isinstance(n, int) and n > 0 else 1
    costs = {
        m: call_cost(registry, m, tokens, body, default, choices=choices)
        for m in candidate_models(ctx, config, registry)
    }
    worst = max(costs.values())
    if _cascades(ctx, config):
        tiers = config.cascade.tiers
        climb = sum(costs[t.model] for t in tiers)
        judge = config.cascade.judge_model
        if judge:
            for tier in tiers[:-1]:
                answer = answer_tokens(body, registry.get(tier.model), default)
                climb += judge_cost(registry, judge, tokens, answer, default)
        worst = max(worst, climb)
    return worst


def _window_cost(
    ctx: Context, config: ThriftyConfig, registry: ModelRegistry, body: dict[str, Any]
) -> float:
    """The whole packed call this request may share (0 when it cannot be windowed)."""
    batching = config.batching
    if not (batching.enabled and batching.window.enabled) or ctx.endpoint != CHAT:
        return 0.0
    control = ctx.controls.get("batch")
    if not (control == "window" or (control is None and batching.window.default)):
        return 0.0
    if ctx.stream or body.get("n") not in (None, 1):
        return 0.0
    from thrifty.batching.packing import INSTRUCTIONS, LABEL_TOKENS

    packing = batching.packing
    size = packing.max_batch_size
    messages = body.get("messages") or []
    prefix = [m for m in messages[:-1] if m.get("role") in ("system", "developer")]
    worst_model = max(
        _answer_models(ctx, config, registry),
        key=lambda m: count_messages(prefix, registry.get(m).deployments[0].upstream_model).tokens,
    )
    upstream = registry.get(worst_model).deployments[0].upstream_model
    instructions = INSTRUCTIONS.format(n=size, example=f"[{size}|ffff]")
    fixed = count_messages([*prefix, {"role": "user", "content": instructions}], upstream).tokens
    packed = fixed + size * (packing.max_question_tokens + LABEL_TOKENS + 2)
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    budget = asked if isinstance(asked, int) and asked > 0 else packing.answer_tokens
    packed_body = {**body, "max_tokens": size * (budget + LABEL_TOKENS), "n": 1}
    packed_body.pop("max_completion_tokens", None)
    return _answer_cost(ctx, config, registry, packed, packed_body)


def estimate(
    ctx: Context, config: ThriftyConfig, registry: ModelRegistry, *, priced: bool
) -> Estimate:
    """Prompt tokens, and (when ``priced``) the worst-case cost of ``ctx`` under ``config``."""
    tokens = prompt_tokens(ctx.body, ctx.endpoint, registry.get(ctx.model))
    if not priced:
        return Estimate(tokens, 0.0)
    body = ctx.body
    cost = _answer_cost(ctx, config, registry, tokens, body)
    if ctx.endpoint == CHAT:
        default = config.governance.default_max_output_tokens
        cost += verify_cost(registry, config, body, default)
        if ctx.controls.get("compress", "").strip().lower() != "off":
            cost += summary_cost(registry, config, body, ctx.model, default)
        cost += _window_cost(ctx, config, registry, body)
    return Estimate(tokens, cost)


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
