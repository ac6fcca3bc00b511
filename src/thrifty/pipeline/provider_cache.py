"""What provider prompt caching that Thrifty asked for did (Anthropic ``cache_control``
breakpoints placed by the provider), noted in ``techniques["prompt_cache"]``.

The money is booked by the ledger's attribution (``pipeline/attribution.py``), like every
cause: ``prompt_cache`` is the list price of the prompt minus what its cached reads and
cache writes cost (a prefix written and never read again is a negative saving).
"""

from __future__ import annotations

from thrifty.pipeline.context import Context
from thrifty.usage import Usage

TECHNIQUE = "prompt_cache"


def note_prompt_cache(ctx: Context, usage: Usage | None, breakpoints: int) -> None:
    """Add this call's breakpoints and cache reads/writes to ``ctx.techniques`` (no-op when
    Thrifty placed no breakpoint)."""
    if not breakpoints or usage is None:
        return
    seen = ctx.techniques.get(TECHNIQUE, {})
    ctx.techniques[TECHNIQUE] = {
        "breakpoints": seen.get("breakpoints", 0) + breakpoints,
        "read_tokens": seen.get("read_tokens", 0) + usage.cached_input_tokens,
        "write_tokens": seen.get("write_tokens", 0) + usage.cache_write_tokens,
    }
