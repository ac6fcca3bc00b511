"""The provider contract: a transport that sends one OpenAI-style request upstream.

Providers know nothing of retries, fallbacks, prices or the ledger; the dispatch stage
owns those. A provider translates its transport's failures into :mod:`thrifty.errors`
at this boundary, so nothing above it sees an aiohttp exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(slots=True)
class ProviderReply:
    """A complete (non-streamed) upstream answer."""

    body: dict[str, Any]
    status: int = 200
    cache_breakpoints: int = 0
    """Provider prompt-cache breakpoints Thrifty placed on this call (its saving is booked
    as ``prompt_cache``); a stream says the same in its own ``cache_breakpoints``."""
    caller_cache_breakpoints: int = 0
    """Breakpoints the caller placed and the provider sent on (not Thrifty's doing)."""


class ProviderStream(Protocol):
    """An upstream SSE stream whose status was already checked.

    Iterating yields each event's parsed JSON. It ends normally only if the upstream
    finished the answer (``[DONE]`` or a ``finish_reason``); a cut connection raises
    :class:`thrifty.errors.StreamInterrupted`. ``aclose`` releases the connection.
    ``cache_breakpoints``, ``caller_cache_breakpoints``: as in :class:`ProviderReply`.
    """

    cache_breakpoints: int
    caller_cache_breakpoints: int

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


class Provider(Protocol):
    name: str
    stream_usage: bool
    """Whether to ask for ``stream_options.include_usage`` (priced streams need it)."""

    async def send(self, endpoint: str, body: dict[str, Any]) -> ProviderReply:
        """POST ``body`` to ``endpoint`` (e.g. ``chat/completions``) and return the JSON."""
        ...

    async def open_stream(self, endpoint: str, body: dict[str, Any]) -> ProviderStream:
        """Start a streamed request; raises before returning if the upstream refused it."""
        ...

    async def get(self, endpoint: str) -> dict[str, Any]: ...

    async def close(self) -> None: ...
