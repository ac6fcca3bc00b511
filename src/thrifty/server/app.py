"""The gateway's ASGI app: the hot path, the route table mounted, error rendering, and the
lifespan that owns resources."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from thrifty.config.schema import ThriftyConfig
from thrifty.errors import InvalidRequest, ThriftyError
from thrifty.logs import request_id_var
from thrifty.pipeline.context import new_request_id
from thrifty.runtime import Runtime
from thrifty.server.features import build_features
from thrifty.server.local_guard import LocalGuard, build_local_guard
from thrifty.server.protocol import STATE_KEY, HttpLimits
from thrifty.server.responses import error_response
from thrifty.server.routes import mount

log = logging.getLogger(__name__)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = InvalidRequest(
        f"{request.method} {request.url.path}: {exc.detail}",
        status=exc.status_code,
        code="not_found"
        if exc.status_code == 404
        else "method_not_allowed"
        if exc.status_code == 405
        else None,
    )
    return error_response(error)


async def _unhandled(request: Request, exc: Exception) -> Response:
    return error_response(exc)


class GatewayApp:
    """The ASGI app the server runs: the model endpoints' hot path, then Starlette.

    ``POST /v1/chat/completions`` and ``POST /v1/embeddings`` go straight to their
    :class:`ModelEndpoint` (Starlette's middleware, router and ``Request`` cost ~20 µs of
    CPU per request, measured in-process); everything else — other routes, 404/405, wrong
    methods, the lifespan — goes to the Starlette app, which routes the model endpoints
    to the same ``ModelEndpoint`` objects, so there is one implementation.
    """

    def __init__(
        self, app: Starlette, fast_routes: dict[str, ASGIApp], guard: LocalGuard | None = None
    ) -> None:
        self.app = app
        self._fast_routes = fast_routes
        self._guard = guard

    @property
    def state(self) -> State:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._guard is not None and (refused := self._guard.refusal(scope)) is not None:
            await error_response(refused)(scope, receive, _with_request_id(send))
            return
        if scope["method"] == "POST" and not scope.get("root_path"):
            endpoint = self._fast_routes.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, _with_request_id(send))


def _with_request_id(send: Send) -> Send:
    """``send`` that gives the response an ``x-thrifty-request-id`` (this task's log lines
    and error bodies carry the same id), unless the response already has one."""
    request_id = new_request_id()
    request_id_var.set(request_id)
    header = (b"x-thrifty-request-id", request_id.encode())

    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if not any(name == header[0] for name, _ in headers):
                message = {**message, "headers": [*headers, header]}
        await send(message)

    return send_with_id


def build_app(
    config: ThriftyConfig, *, ledger_path: str | None = None, bind_host: str | None = None
) -> GatewayApp:
    """Build the gateway. Resources (connections, ledger writer) live in the lifespan:
    created at start-up, and on shutdown the ledger is flushed after in-flight requests
    finish (uvicorn waits for them before running the lifespan's exit). ``bind_host``:
    the address the server listens on, when not ``server.host`` (``thrifty serve --host``);
    it is one of the hosts a gateway without auth answers to (local_guard.py)."""
    runtime = Runtime(config, ledger_path=ledger_path)
    features = build_features(runtime)
    routes, fast_routes = mount(features, config.server.max_body_bytes)

    server = config.server
    limits = HttpLimits(server.max_header_bytes, server.header_timeout_s, server.body_timeout_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        log.info("gateway started", extra={"models": runtime.registry.names})
        try:
            yield {STATE_KEY: limits}  # each connection's protocol reads them (protocol.py)
        finally:
            await runtime.aclose()
            features.close()
            log.info("gateway stopped; ledger flushed")

    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: _http_error,
            ThriftyError: _unhandled,
            Exception: _unhandled,
        },
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    guard = build_local_guard(
        auth_enabled=config.auth.enabled,
        bind_host=bind_host or server.host,
        allowed_hosts=server.allowed_hosts,
        allowed_origins=server.allowed_origins,
    )
    return GatewayApp(app, fast_routes, guard)
