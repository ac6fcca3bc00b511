"""The gateway's ASGI app: routes, error rendering, and the lifespan that owns resources."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from thrifty.config.schema import ThriftyConfig
from thrifty.errors import InvalidRequest, ThriftyError
from thrifty.runtime import Runtime
from thrifty.server.responses import error_response
from thrifty.server.routes import Handlers

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


def build_app(config: ThriftyConfig, *, ledger_path: str | None = None) -> Starlette:
    """Build the gateway. Resources (connections, ledger writer) live in the lifespan:
    created at start-up, and on shutdown the ledger is flushed after in-flight requests
    finish (uvicorn waits for them before running the lifespan's exit)."""
    runtime = Runtime(config, ledger_path=ledger_path)
    handlers = Handlers(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info("gateway started", extra={"models": runtime.registry.names})
        try:
            yield
        finally:
            await runtime.aclose()
            log.info("gateway stopped; ledger flushed")

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", handlers.chat_completions, methods=["POST"]),
            Route("/v1/embeddings", handlers.embeddings, methods=["POST"]),
            Route("/v1/models", handlers.models, methods=["GET"]),
            Route("/health", handlers.health, methods=["GET"]),
        ],
        exception_handlers={
            HTTPException: _http_error,
            ThriftyError: _unhandled,
            Exception: _unhandled,
        },
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
