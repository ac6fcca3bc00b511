"""Rendering replies: JSON with orjson, SSE streams, and OpenAI-style errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse
from starlette.types import Send

from thrifty.errors import ThriftyError, to_openai_error

log = logging.getLogger(__name__)


class JSONBytesResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else orjson.dumps(content)


def error_response(exc: BaseException, request_id: str | None = None) -> Response:
    status, body, headers = to_openai_error(exc)
    if status >= 500 and not isinstance(exc, ThriftyError):
        log.error("unhandled error", exc_info=exc, extra={"request_id": request_id})
    extra = dict(headers)
    if request_id:
        extra["x-thrifty-request-id"] = request_id
    return JSONBytesResponse(body, status_code=status, headers=extra)


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


class SSEResponse(StreamingResponse):
    """A streaming response that always closes its source, even if the client left."""

    def __init__(self, chunks: AsyncIterator[dict[str, Any]], headers: Mapping[str, str]) -> None:
        self._chunks = chunks
        super().__init__(
            sse_events(chunks),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no", **headers},
        )

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            await self.body_iterator.aclose()  # type: ignore[attr-defined]
            await self._chunks.aclose()  # type: ignore[attr-defined]
