"""Calls the pipeline makes for itself (a judge's grade, a cache verifier's yes/no).

They go through the dispatch stage (retries, fallbacks, pricing) and land in the same
request's attempts under their own ``purpose``, so their cost is the technique's overhead.
A failed side call returns "" — the caller decides what no answer means.
"""

from __future__ import annotations

from typing import Any

from thrifty.errors import ThriftyError
from thrifty.pipeline.context import CHAT, Context
from thrifty.pipeline.dispatch import DispatchStage


async def side_call(
    dispatch: DispatchStage,
    ctx: Context,
    model: str,
    messages: list[dict[str, Any]],
    *,
    purpose: str,
    max_tokens: int,
) -> str:
    child = Context(
        endpoint=CHAT,
        body={"model": model, "messages": messages, "temperature": 0, "max_tokens": max_tokens},
        requested_model=model,
        model=model,
        baseline_model=model,
        request_id=ctx.request_id,
        attempts=ctx.attempts,
    )
    first = len(ctx.attempts)
    try:
        reply = await dispatch(child)
    except ThriftyError:
        return ""
    finally:
        for attempt in ctx.attempts[first:]:
            attempt.purpose = purpose
    return reply.answer_text() or ""
