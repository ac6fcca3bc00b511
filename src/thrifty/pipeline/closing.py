"""Stream wrappers whose clean-up runs even when the caller closes before reading.

Python skips an unstarted async generator's ``finally`` blocks on ``aclose``, so a stream
closed before its first chunk (a library caller who never iterates, a client that leaves
before the first event is sent) would keep its budget reservation, write no ledger row and
leave the upstream stream open. :class:`ClosingStream` starts such a generator by reading
one chunk (the first is already in hand: dispatch fetched it to pick the deployment) and
then closes it, so every ``finally`` down the chain runs as for a client that left.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

__all__ = ["ClosingStream"]


class ClosingStream:
    """An async iterator over ``gen`` whose :meth:`aclose` always runs ``gen``'s clean-up."""

    __slots__ = ("_gen", "_started")

    def __init__(self, gen: AsyncGenerator[dict[str, Any], None]) -> None:
        self._gen = gen
        self._started = False

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self

    async def __anext__(self) -> dict[str, Any]:
        self._started = True
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        if not self._started:
            self._started = True
            # the caller wants neither chunks nor errors now; inner stages record any error
            with contextlib.suppress(Exception):
                await self._gen.__anext__()
        await self._gen.aclose()
