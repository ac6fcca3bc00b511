"""Where a caller's key travels over HTTP: ``Authorization: Bearer``, ``api-key``, ``x-api-key``.

One rule for every route that takes a key (the model endpoints, batch jobs, the admin
API), so a client that works with one works with all; the OpenAI and Azure SDKs each use
one of these headers.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

__all__ = ["bearer_from", "presented_key"]


def bearer_from(get: Callable[[str], str | None]) -> str | None:
    """The caller's key from a header lookup (``Authorization`` first, then the others)."""
    header = get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else header.strip()
    return get("api-key") or get("x-api-key")


def presented_key(request: Request) -> str | None:
    """The caller's key from a Starlette request (the same headers as the model endpoints)."""
    return bearer_from(request.headers.get)
