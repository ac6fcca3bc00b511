"""The most a request can cost, reserved against budgets before it runs.

Chat: the prompt's tokens at the input price plus the longest possible answer
(``max_completion_tokens``/``max_tokens``, capped by the model's output limit; else the
model's output limit; else ``governance.default_max_output_tokens``) at the output price,
times ``n``. When the pipeline may pick the model (routing), the most expensive candidate
counts; when a cascade may climb, every tier is paid for. Embeddings: input tokens only.

Prompts are counted exactly for OpenAI tokenizers; other families are counted with
o200k and padded by 25%. Images and audio are not counted (their price depends on
resolution), and overhead calls (a cascade's judge, a cache verifier) are not included:
those are the cases where the settled cost may exceed the reservation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from thrifty.config.schema import ThriftyConfig
from thrifty.errors import InvalidRequest
from thrifty.pipeline.context import CHAT, Context
from thrifty.registry import ModelRegistry, ResolvedModel
from thrifty.tokens import count_messages, count_text

__all__ = ["Estimate", "candidate_models", "estimate"]

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


def candidate_models(ctx: Context, config: ThriftyConfig, registry: ModelRegistry) -> set[str]:
    """Every model the pipeline of ``config`` may call as this request's answer."""
    models = {ctx.model}
    if _routes(ctx, config):
        control = ctx.controls.get("route")
        if control:
            models = {control}
        else:
            routing = config.routing
            models = set(routing.candidates) or {
                n
                for n in registry.names
                if (p := registry.get(n).price) is None or p.mode in (None, "chat")
            }
            models |= {m for names in routing.tasks.values() for m in names}
    if _cascades(ctx, config):
        models |= {tier.model for tier in config.cascade.tiers}
    return models


def _prompt_tokens(ctx: Context, model: ResolvedModel) -> tuple[int, bool]:
    name = model.deployments[0].upstream_model
    body = ctx.body
    if ctx.endpoint != CHAT:
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
        return tokens, approximate
    counted = count_messages(body.get("messages") or [], name)
    tokens, approximate = counted.tokens, counted.approximate
    for extra in ("tools", "functions", "response_format"):
        if body.get(extra):
            tokens += count_text(orjson.dumps(body[extra]).decode(), name).tokens
    return tokens, approximate


def _answer_tokens(body: dict[str, Any], model: ResolvedModel, default: int) -> int:
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    limit = model.max_output_tokens
    if isinstance(asked, int) and asked > 0:
        return min(asked, limit) if limit else asked
    return limit or default


def _cost(ctx: Context, model: ResolvedModel, prompt_tokens: int, default_output: int) -> float:
    price = model.price
    if price is None:
        raise InvalidRequest(
            f"model {model.name!r} has no known price, and a budget applies to this key: "
            "set models.<name>.price in the gateway's config",
            param="model",
            code="model_unpriced",
        )
    input_price = max(price.input_per_token, price.cache_write_per_token or 0.0)
    cost = prompt_tokens * input_price
    if ctx.endpoint == CHAT:
        n = ctx.body.get("n")
        choices = n if isinstance(n, int) and n > 0 else 1
        output_price = max(price.output_per_token, price.reasoning_per_token or 0.0)
        cost += choices * _answer_tokens(ctx.body, model, default_output) * output_price
    return cost


def estimate(
    ctx: Context, config: ThriftyConfig, registry: ModelRegistry, *, priced: bool
) -> Estimate:
    """Prompt tokens, and (when ``priced``) the worst-case cost of ``ctx`` under ``config``."""
    models = [registry.get(name) for name in sorted(candidate_models(ctx, config, registry))]
    tokens, approximate = _prompt_tokens(ctx, registry.get(ctx.model))
    if approximate:
        tokens = math.ceil(tokens * _APPROXIMATE_PAD)
    if not priced:
        return Estimate(tokens, 0.0)
    default_output = config.governance.default_max_output_tokens
    costs = {m.name: _cost(ctx, m, tokens, default_output) for m in models}
    worst = max(costs.values())
    if _cascades(ctx, config):
        worst = max(worst, sum(costs[t.model] for t in config.cascade.tiers))
    return Estimate(tokens, worst)
