"""The model endpoints: read and check the body, run the pipeline, render the reply.

``POST /v1/chat/completions`` and ``/v1/embeddings`` are raw ASGI apps
(:class:`ModelEndpoint`): they read the ASGI scope and receive channel directly, with no
``Request`` object, and ``server/app.py`` calls them before Starlette's middleware and
router (the hot path).
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from thrifty.errors import ThriftyError
from thrifty.governance.keys.presented import bearer_from
from thrifty.logs import request_id_var
from thrifty.pipeline.context import new_request_id
from thrifty.pipeline.requests import loads_body
from thrifty.runtime import Runtime
from thrifty.server.dialect import Dialect
from thrifty.server.responses import JSONReply, SSEReply, error_response, too_large

log = logging.getLogger(__name__)

_THRIFTY_PREFIX = b"x-thrifty-"
#: The only request headers the model endpoints read, besides ``x-thrifty-*``.
_WANTED = frozenset({b"authorization", b"api-key", b"x-api-key", b"content-length"})


def _read_headers(scope: Scope) -> tuple[dict[str, str], dict[str, str]]:
    """``(wanted, thrifty)`` from the raw ASGI headers (names arrive lower-cased).

    ``wanted``: the few headers in ``_WANTED``, first value wins (as ``Headers.get``);
    ``thrifty``: every ``x-thrifty-*`` header, last value wins (as a dict of ``items()``).
    """
    wanted: dict[str, str] = {}
    thrifty: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        if raw_name.startswith(_THRIFTY_PREFIX):
            thrifty[raw_name.decode("latin-1")] = raw_value.decode("latin-1")
        elif raw_name in _WANTED:
            wanted.setdefault(raw_name.decode("latin-1"), raw_value.decode("latin-1"))
    return wanted, thrifty


async def _read_body(receive: Receive, declared: str | None, limit: int) -> bytes | bytearray:
    """The whole request body, refused once it passes ``limit`` bytes."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        part = message.get("body", b"")
        more = message.get("more_body", False)
        if not more and not body:  # the usual case: one message, no copy
            if len(part) > limit:
                raise too_large(limit)
            return part
        body += part
        if len(body) > limit:
            raise too_large(limit)
        if not more:
            return body


class ModelEndpoint:
    """A raw ASGI app for one pipeline endpoint (``chat.completions`` or ``embeddings``),
    or for a ``dialect`` of chat (the Responses API, Anthropic Messages, legacy
    completions: ``server/dialect.py``), whose request and reply it maps around the run.

    Same contract as a handler in the route table: a ``ThriftyError`` becomes its
    OpenAI-style error; any other exception raised before the response starts is logged
    and rendered as a 500 (the connection stays open); every error carries the request
    id. A client that leaves before its body arrived gets nothing, and is no error.
    """

    def __init__(self, runtime: Runtime, endpoint: str, dialect: Dialect | None = None) -> None:
        self.runtime = runtime
        self.endpoint = endpoint
        self.dialect = dialect
        self._limit = runtime.config.server.max_body_bytes

    def _error(self, exc: BaseException, request_id: str) -> Response:
        if self.dialect is not None:
            return self.dialect.error(exc, request_id)
        return error_response(exc, request_id)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        request_id_var.set(request_id)  # this task's log lines carry it
        try:
            response = await self._respond(scope, receive, request_id)
        except ClientDisconnect:
            log.info("client left before its request body arrived")
            return
        except Exception as exc:
            response = self._error(exc, request_id)
        await response(scope, receive, send)

    async def _respond(
        self, scope: Scope, receive: Receive, request_id: str
    ) -> Response | JSONReply | SSEReply:
        try:
            runtime = self.runtime
            wanted, thrifty_headers = _read_headers(scope)
            caller = await runtime.authenticate_async(bearer_from(wanted.get))
            body = loads_body(await _read_body(receive, wanted.get("content-length"), self._limit))
            exchange = None
            if self.dialect is not None:
                exchange = await self.dialect.prepare(body, caller)
                body = exchange.chat
            ctx = runtime.new_context(self.endpoint, body, thrifty_headers, caller, request_id)
            if self.dialect is not None:
                ctx.api = self.dialect.api
            reply = await runtime.run(ctx, caller)
            headers = {
                "x-thrifty-request-id": request_id,
                "x-thrifty-model": reply.model,
                **reply.headers,
            }
            if exchange is None:
                if reply.chunks is not None:
                    return SSEReply(reply.chunks, headers)
                return JSONReply(reply.body, headers)
            if reply.chunks is not None:
                return SSEReply(reply.chunks, headers, exchange.events(ctx, reply))
            return JSONReply(await exchange.reply(ctx, reply), headers)
        except ThriftyError as exc:
            return self._error(exc, request_id)
