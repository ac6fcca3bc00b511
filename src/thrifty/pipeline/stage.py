"""The stage contract: ``async def __call__(ctx, call_next) -> Reply``.

A stage answers by returning a :class:`Reply`, or passes the request on with
``await call_next(ctx)`` and may work on the way back (store in a cache, settle a
budget). Stages are built only when enabled: "off" means absent from the chain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from thrifty.pipeline.context import Context, Reply

CallNext = Callable[[Context], Awaitable[Reply]]


class Stage(Protocol):
    async def __call__(self, ctx: Context, call_next: CallNext) -> Reply: ...
