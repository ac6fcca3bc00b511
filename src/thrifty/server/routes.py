"""Every HTTP route the gateway serves, in one table, and how each is mounted.

Features expose handlers, never routes: a handler takes the Starlette ``Request`` and
returns a ``Response``, bytes (a file's content) or JSON-able data, and raises a
:class:`ThriftyError` for the client's OpenAI-style error, rendered here (any other
exception is logged and rendered as a 500, without closing the connection). The two model
endpoints (chat, embeddings, and the chat dialects: responses, messages, legacy
completions) are raw ASGI apps that :class:`~thrifty.server.app.GatewayApp` also calls
before Starlette's router (the hot path), so they are mounted as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from thrifty.server.features import Features
from thrifty.server.responses import JSONBytesResponse, error_response, too_large

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Any]]
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """One route: which feature's handler serves which methods of a path."""

    path: str
    methods: tuple[str, ...]
    feature: str
    """A field of :class:`Features`; when it is None (the feature is off) nothing is mounted."""
    handler: str | None = None
    """The feature's method; None: the feature is itself a raw ASGI app (POST, hot path)."""
    status: int = 200
    """The status of a JSON reply when the handler returns data."""
    own_body_limit: bool = False
    """The handler bounds the body itself (uploads: ``batching.jobs.max_file_bytes``);
    every other route's body is refused past ``server.max_body_bytes``."""


#: The whole HTTP surface, in matching order.
ROUTES: tuple[RouteEntry, ...] = (
    RouteEntry("/v1/chat/completions", ("POST",), "chat"),
    RouteEntry("/v1/embeddings", ("POST",), "embeddings"),
    RouteEntry("/v1/responses", ("POST",), "responses"),
    RouteEntry("/v1/messages", ("POST",), "messages"),
    RouteEntry("/v1/completions", ("POST",), "completions"),
    RouteEntry("/v1/models", ("GET",), "gateway", "models"),
    RouteEntry("/v1/models/{model_id:path}", ("GET",), "gateway", "model"),
    RouteEntry("/health", ("GET",), "gateway", "health"),
    RouteEntry("/v1/files", ("POST",), "jobs", "upload", own_body_limit=True),
    RouteEntry("/v1/files/{file_id}", ("GET",), "jobs", "file"),
    RouteEntry("/v1/files/{file_id}/content", ("GET",), "jobs", "content"),
    RouteEntry("/v1/batches", ("POST",), "jobs", "create"),
    RouteEntry("/v1/batches", ("GET",), "jobs", "list"),
    RouteEntry("/v1/batches/{batch_id}", ("GET",), "jobs", "retrieve"),
    RouteEntry("/v1/batches/{batch_id}/cancel", ("POST",), "jobs", "cancel"),
    RouteEntry("/metrics", ("GET",), "metrics", "handle"),
    RouteEntry("/dashboard", ("GET",), "dashboard", "page"),
    RouteEntry("/dashboard/login", ("GET",), "dashboard", "login_form"),
    RouteEntry("/dashboard/login", ("POST",), "dashboard", "login"),
    RouteEntry("/dashboard/logout", ("POST",), "dashboard", "logout"),
    RouteEntry("/dashboard/static/{name}", ("GET",), "dashboard", "static"),
    RouteEntry("/admin/keys", ("POST",), "admin", "create", status=201),
    RouteEntry("/admin/keys", ("GET",), "admin", "list"),
    RouteEntry("/admin/keys/{key_id}", ("GET",), "admin", "get"),
    RouteEntry("/admin/keys/{key_id}", ("PATCH",), "admin", "update"),
    RouteEntry("/admin/keys/{key_id}", ("DELETE",), "admin", "revoke"),
    RouteEntry("/admin/budgets", ("GET",), "admin", "budgets"),
)


def mount(features: Features, max_body_bytes: int) -> tuple[list[Route], dict[str, ASGIApp]]:
    """Starlette's routes for the features that are on, and the raw ASGI endpoints by path
    (for :class:`~thrifty.server.app.GatewayApp`'s hot path). Bodies past
    ``max_body_bytes`` are refused with a 413 (the model endpoints check it themselves)."""
    routes: list[Route] = []
    fast: dict[str, ASGIApp] = {}
    for entry in ROUTES:
        owner = getattr(features, entry.feature)
        if owner is None:
            continue
        if entry.handler is None:
            routes.append(Route(entry.path, owner, methods=list(entry.methods)))
            fast[entry.path] = owner
        else:
            limit = None if entry.own_body_limit else max_body_bytes
            endpoint = rendered(getattr(owner, entry.handler), entry.status, limit)
            routes.append(Route(entry.path, endpoint, methods=list(entry.methods)))
    return routes, fast


def rendered(handler: Handler, status: int = 200, limit: int | None = None) -> Endpoint:
    """A Starlette endpoint around ``handler``: errors and data become responses; a body
    past ``limit`` bytes (declared, or as it arrives) is a 413."""

    async def endpoint(request: Request) -> Response:
        try:
            if limit is not None:
                request = bounded(request, limit)
            result = await handler(request)
        except ClientDisconnect:  # the client left mid-upload: nobody reads a reply
            log.info("client left before its request body arrived")
            return Response(status_code=400)
        except Exception as exc:  # a ThriftyError, or logged as a 500; the connection stays
            return error_response(exc)
        if isinstance(result, Response):
            return result
        if isinstance(result, bytes):
            return Response(result, media_type="application/octet-stream")
        return JSONBytesResponse(result, status_code=status)

    return endpoint


def bounded(request: Request, limit: int) -> Request:
    """``request`` whose body is refused (:class:`PayloadTooLarge`) once it passes ``limit``
    bytes: at once when ``Content-Length`` says so, else as chunks arrive, so a chunked
    body is never held whole before the check."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    receive = request.receive
    received = 0

    async def bounded_receive() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise too_large(limit)
        return message

    return Request(request.scope, bounded_receive)
