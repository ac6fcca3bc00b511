"""The one place the ``prompt_cache`` saving is booked: provider prompt caching that
Thrifty asked for (Anthropic ``cache_control`` breakpoints placed by the provider).

A call whose breakpoints Thrifty placed saved, at the answering model's prices, what its
cached reads did not cost, minus the premium its cache writes cost (a prefix written and
never read again is a negative saving, booked as such). Caching the provider does by
itself (OpenAI, DeepSeek) is not Thrifty's doing and is not booked.
"""

from __future__ import annotations

from thrifty.pipeline.context import Context
from thrifty.registry import ResolvedModel
from thrifty.usage import Usage

SAVING = "prompt_cache"


def book_prompt_cache(
    ctx: Context, usage: Usage | None, model: ResolvedModel, breakpoints: int
) -> None:
    """Add this call's prompt-cache saving to ``ctx.savings`` and its figures to
    ``ctx.techniques`` (no-op when Thrifty placed no breakpoint or the model is unpriced)."""
    if not breakpoints or usage is None or model.price is None:
        return
    price = model.price
    full = price.input_per_token
    read = price.cached_input_per_token if price.cached_input_per_token is not None else full
    write = price.cache_write_per_token if price.cache_write_per_token is not None else full
    saved = usage.cached_input_tokens * (full - read) - usage.cache_write_tokens * (write - full)
    ctx.savings[SAVING] = ctx.savings.get(SAVING, 0.0) + saved
    seen = ctx.techniques.get(SAVING, {})
    ctx.techniques[SAVING] = {
        "breakpoints": seen.get("breakpoints", 0) + breakpoints,
        "read_tokens": seen.get("read_tokens", 0) + usage.cached_input_tokens,
        "write_tokens": seen.get("write_tokens", 0) + usage.cache_write_tokens,
    }
