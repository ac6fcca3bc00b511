"""``POST /v1/messages``: Anthropic's Messages API, served on the chat pipeline.

Claude-style clients (the ``anthropic`` SDK, tools built on it) send their key as
``x-api-key`` (``Authorization: Bearer`` works too) and get Anthropic's shapes back: a
``message`` with ``text`` and ``tool_use`` blocks, Anthropic usage (``input_tokens``
excludes cache reads and writes), the named stream events (``message_start``,
``content_block_start`` / ``_delta`` / ``_stop``, ``message_delta``, ``message_stop``)
and errors as ``{"type": "error", "error": {"type", "message"}}``. The conversions live
with the Anthropic provider (``providers/anthropic_format.py``, ``anthropic_reply.py``).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response

from thrifty.errors import ThriftyError
from thrifty.governance.keys.identity import Caller
from thrifty.pipeline.context import Context, Reply
from thrifty.providers.anthropic_format import messages_to_chat
from thrifty.providers.anthropic_reply import (
    MessageEvents,
    chat_to_message,
    error_body,
    sse,
    usage_from_counts,
)
from thrifty.server.responses import JSONBytesResponse, error_parts
from thrifty.usage import Usage


def anthropic_usage(usage: Usage | None) -> dict[str, Any]:
    u = usage or Usage()
    return usage_from_counts(
        u.input_tokens,
        u.cached_input_tokens,
        u.cache_write_tokens,
        u.output_tokens,
        u.cache_write_1h_tokens,
    )


class MessagesExchange:
    def __init__(self, body: dict[str, Any]) -> None:
        self.chat = messages_to_chat(body)
        self.id = "msg_" + secrets.token_hex(12)

    async def reply(self, ctx: Context, reply: Reply) -> dict[str, Any]:
        message = chat_to_message(reply.body or {}, anthropic_usage(reply.usage), self.id)
        message["model"] = reply.model
        return message

    async def events(self, ctx: Context, reply: Reply) -> AsyncIterator[bytes]:
        assert reply.chunks is not None
        events = MessageEvents(self.id, reply.model)
        usage: Usage | None = None
        try:
            async for chunk in reply.chunks:
                if chunk.get("usage"):
                    usage = Usage.from_openai(chunk["usage"])
                for event in events.feed(chunk):
                    yield sse(*event)
        except ThriftyError as exc:
            yield sse("error", error_body(exc.status, exc.message))
            return
        for event in events.finish(anthropic_usage(usage or reply.usage)):
            yield sse(*event)


class MessagesDialect:
    """Anthropic Messages as a chat dialect (``server/dialect.py``)."""

    api = "messages"

    async def prepare(self, body: Any, caller: Caller) -> MessagesExchange:
        return MessagesExchange(body)

    def error(self, exc: BaseException, request_id: str | None) -> Response:
        status, body, headers = error_parts(exc, request_id)
        if "x-thrifty-request-id" in headers:
            headers["request-id"] = headers["x-thrifty-request-id"]  # where Anthropic's SDK looks
        content = error_body(status, body["error"]["message"])
        return JSONBytesResponse(content, status_code=status, headers=headers)
