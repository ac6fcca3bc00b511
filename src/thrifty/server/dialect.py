"""The contract of an API dialect served on the chat pipeline (Responses, Messages,
legacy completions): turn its request into a chat body, and the chat reply back.

Each dialect is a small module of its own; :class:`~thrifty.server.model_endpoint.
ModelEndpoint` runs any of them exactly as it runs ``/v1/chat/completions``, so every
technique (cache, compression, routing, cascade, budgets, the ledger) applies to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from starlette.responses import Response

from thrifty.governance.keys.identity import Caller
from thrifty.pipeline.context import Context, Reply


class Exchange(Protocol):
    """One request in a dialect: its chat body, and how its reply is rendered."""

    chat: dict[str, Any]
    """The chat completion body the pipeline runs."""

    async def reply(self, ctx: Context, reply: Reply) -> dict[str, Any]:
        """The dialect's JSON body for a complete chat reply (async: a dialect may store
        it first, as the Responses API does for ``previous_response_id``)."""
        ...

    def events(self, ctx: Context, reply: Reply) -> AsyncIterator[bytes]:
        """The dialect's SSE bytes for a streamed chat reply (``reply.chunks``), errors
        mid-stream included; it does not close the chunks (the caller does)."""
        ...


class Dialect(Protocol):
    api: str
    """The API's name in the ledger's ``api`` column (``responses``, ``messages``, ...)."""

    async def prepare(self, body: Any, caller: Caller) -> Exchange:
        """Check a request and map it (raises ``ThriftyError`` for bad input); async: a
        dialect may read stored state first (a previous response)."""
        ...

    def error(self, exc: BaseException, request_id: str | None) -> Response:
        """The dialect's error response for ``exc``."""
        ...


def tenant_of(caller: Caller) -> str:
    """Whose stored state a request may read: the caller's key id (one shared tenant
    when auth is off)."""
    return caller.key_id or "anonymous"
