"""What provider prompt caching did on a call, noted in ``ctx.techniques``.

``prompt_cache``: the breakpoints Thrifty asked for (Anthropic ``cache_control`` placed
by the provider's planner) and the cache reads and writes they brought. The money is
booked by the ledger's attribution (``pipeline/attribution.py``), like every cause:
``prompt_cache`` is the list price of the prompt minus what its cached reads and cache
writes cost (a prefix written and never read again is a negative saving).

``caller_cache``: the breakpoints the *caller* placed (its own ``cache_control`` on
``/v1/messages`` or on chat content parts, sent on to a ``kind: anthropic`` provider) and
the reads and writes they brought. That caching is the caller's, not Thrifty's: the
attempt's cost prices the reads and writes as billed, so the cost is right, and it is
noted apart so that no Thrifty technique is credited with it (docs/apis.md).
"""

from __future__ import annotations

from thrifty.pipeline.context import Context
from thrifty.usage import Usage

TECHNIQUE = "prompt_cache"
CALLER = "caller_cache"


def note_prompt_cache(
    ctx: Context, usage: Usage | None, breakpoints: int, caller_breakpoints: int = 0
) -> None:
    """Add this call's breakpoints and cache reads/writes to ``ctx.techniques``: under
    ``prompt_cache`` when Thrifty placed them, ``caller_cache`` when the caller did (no-op
    when there were none)."""
    if usage is None:
        return
    for key, count in ((TECHNIQUE, breakpoints), (CALLER, caller_breakpoints)):
        if not count:
            continue
        seen = ctx.techniques.get(key, {})
        ctx.techniques[key] = {
            "breakpoints": seen.get("breakpoints", 0) + count,
            "read_tokens": seen.get("read_tokens", 0) + usage.cached_input_tokens,
            "write_tokens": seen.get("write_tokens", 0) + usage.cache_write_tokens,
        }
