"""Rendering replies: JSON with orjson, SSE streams, and OpenAI-style errors.

The model endpoints' replies (:class:`JSONReply`, :class:`SSEReply`) are raw ASGI
callables; everything else uses Starlette ``Response`` objects, which cost more per reply
but are not on the hot path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from thrifty.errors import PayloadTooLarge, ThriftyError, to_openai_error
from thrifty.logs import request_id_var

log = logging.getLogger(__name__)


class JSONBytesResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else orjson.dumps(content)


def too_large(limit: int) -> PayloadTooLarge:
    """The 413 for a request body past the gateway's ``server.max_body_bytes``."""
    return PayloadTooLarge(f"request body is larger than the gateway's limit of {limit} bytes")


def error_parts(
    exc: BaseException, request_id: str | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(status, OpenAI error body, headers)`` for ``exc``, the headers carrying the
    request id (``request_id``, else this task's); an unexpected exception is logged."""
    request_id = request_id or request_id_var.get()
    status, body, headers = to_openai_error(exc)
    if status >= 500 and not isinstance(exc, ThriftyError):
        log.error("unhandled error", exc_info=exc, extra={"request_id": request_id})
    extra = dict(headers)
    if request_id:
        extra["x-thrifty-request-id"] = request_id
    return status, body, extra


def error_response(exc: BaseException, request_id: str | None = None) -> Response:
    """The OpenAI-style error response for ``exc`` (see :func:`error_parts`)."""
    status, body, headers = error_parts(exc, request_id)
    return JSONBytesResponse(body, status_code=status, headers=headers)


async def sse_events(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """Encode chunks as SSE; an upstream failure mid-stream becomes an SSE error event,
    which the OpenAI SDKs raise as an ``APIError`` — never a silently truncated 200."""
    try:
        async for chunk in chunks:
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    except ThriftyError as exc:
        _, body, _ = to_openai_error(exc)
        yield b"data: " + orjson.dumps(body) + b"\n\n"
        return
    yield b"data: [DONE]\n\n"


def _raw(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class JSONReply:
    """A 200 JSON reply as raw ASGI messages, with a ``JSONBytesResponse``'s headers."""

    __slots__ = ("body", "headers")

    def __init__(self, body: Any, headers: Mapping[str, str]) -> None:
        self.body = body
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = orjson.dumps(self.body)
        raw = _raw(self.headers)
        raw.append((b"content-length", str(len(body)).encode()))
        raw.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": body})


_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class SSEReply:
    """Streams chunks as SSE (``text/event-stream``) and always closes them.

    When the client leaves, the stream is cancelled at once — even while waiting for the
    upstream's next chunk — so an answer nobody reads stops being generated (and billed).
    Starlette's ``StreamingResponse`` does the same with an anyio task group, which cost
    ~120 µs per streamed request; here one plain task waits for the disconnect and
    cancels the streaming one.
    """

    __slots__ = ("chunks", "events", "headers")

    def __init__(
        self,
        chunks: AsyncIterator[dict[str, Any]],
        headers: Mapping[str, str],
        events: AsyncIterator[bytes] | None = None,
    ) -> None:
        self.chunks = chunks
        self.headers = headers
        self.events = events
        """The encoded stream: OpenAI chat SSE of ``chunks`` unless a dialect gives its own."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        events = self.events if self.events is not None else sse_events(self.chunks)
        task = asyncio.current_task()
        assert task is not None
        finished = False

        def client_left(listener: asyncio.Future[None]) -> None:
            if not finished and not listener.cancelled():
                task.cancel()

        listener = asyncio.ensure_future(_disconnect(receive))
        listener.add_done_callback(client_left)
        raw = _raw({**_SSE_HEADERS, **self.headers})
        raw.append((b"content-type", b"text/event-stream; charset=utf-8"))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": raw})
            async for event in events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not listener.done() or listener.cancelled():
                raise  # cancelled by someone else (e.g. shutdown), not by the client
            task.uncancel()
        except OSError:
            pass  # ASGI 2.4 servers raise on send once the client is gone
        finally:
            finished = True
            listener.cancel()
            await events.aclose()  # type: ignore[attr-defined]
            await self.chunks.aclose()  # type: ignore[attr-defined]


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
