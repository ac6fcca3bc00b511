"""The most one call to a model can cost: the dearest input and output token prices, and
the dearer of the model and its fallbacks (dispatch may answer with either).

Per token, the dearest input class (uncached, cached read, cache write, audio, image) and
the dearest output class (plain, reasoning, audio, image), over every long-context tier,
are taken from :func:`thrifty.pricing.cost` itself, so the bound follows the same
fallbacks as the ledger's pricing (batch prices included); a per-call fee is added per
try. Tries that time out before the answer are billed their prompt, so they are counted.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

from thrifty.errors import InvalidRequest
from thrifty.pricing import cost
from thrifty.pricing.catalogue import ModelPrice
from thrifty.registry import ModelRegistry, ResolvedModel
from thrifty.usage import Usage

__all__ = ["answer_tokens", "call_cost", "unit_prices"]


@lru_cache(maxsize=1024)
def unit_prices(price: ModelPrice, *, batch: bool = False) -> tuple[float, float]:
    """(dearest input price, dearest output price) per token over every price tier (a
    long prompt is billed at a dearer tier); cached: it runs on every request."""
    inputs = (
        Usage(input_tokens=1),
        Usage(input_tokens=1, cached_input_tokens=1),
        Usage(input_tokens=1, cache_write_tokens=1),
        Usage(input_tokens=1, cache_write_tokens=1, cache_write_1h_tokens=1),
        Usage(input_tokens=1, audio_input_tokens=1),
        Usage(input_tokens=1, image_input_tokens=1),
    )
    outputs = (
        Usage(output_tokens=1),
        Usage(output_tokens=1, reasoning_tokens=1),
        Usage(output_tokens=1, audio_output_tokens=1),
        Usage(output_tokens=1, image_output_tokens=1),
    )
    views = [dataclasses.replace(view, tiers=(), per_request=None) for view in price.views()]
    return (
        max(cost(u, view, batch=batch).total for u in inputs for view in views),
        max(cost(u, view, batch=batch).total for u in outputs for view in views),
    )


def answer_tokens(body: dict[str, Any], model: ResolvedModel, default: int) -> int:
    """The longest answer ``body`` allows from ``model`` (its own output limit caps it)."""
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    limit = model.max_output_tokens
    if isinstance(asked, int) and asked > 0:
        return min(asked, limit) if limit else asked
    return limit or default


def _priced(model: ResolvedModel) -> ModelPrice:
    if model.price is None:
        raise InvalidRequest(
            f"model {model.name!r} has no known price, and a budget applies to this key: "
            "set models.<name>.price in the gateway's config",
            param="model",
            code="model_unpriced",
        )
    return model.price


def call_cost(
    registry: ModelRegistry,
    name: str,
    prompt_tokens: int,
    body: dict[str, Any],
    default_output: int,
    *,
    choices: int = 1,
    batch: bool = False,
    tries: int = 1,
) -> float:
    """Worst cost of one call to ``name``, as dispatch makes it: each deployment of the
    model, then of each fallback, tried up to ``tries`` times (``retries.max_attempts``).

    Any try may time out, and a timed-out try is billed its prompt (plus the per-call
    fee; dispatch books it so). The worst case is the dearest of: every try before the
    answering one timed out, then that one answered as long as allowed. A provider batch
    line has no fallbacks nor retries (``batch=True``)."""
    model = registry.get(name)
    fallbacks = () if batch else tuple(registry.get(f) for f in model.fallbacks)
    worst = timed_out = 0.0
    for candidate in (model, *fallbacks):
        price = _priced(candidate)
        input_price, output_price = unit_prices(price, batch=batch)
        fee = price.per_request or 0.0
        prompt = prompt_tokens * input_price + fee  # what one timed-out try is billed
        answer = prompt + choices * answer_tokens(body, candidate, default_output) * output_price
        candidate_tries = 1 if batch else tries * len(candidate.deployments)
        worst = max(worst, timed_out + (candidate_tries - 1) * prompt + answer)
        timed_out += candidate_tries * prompt
    return worst
