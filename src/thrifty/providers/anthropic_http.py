"""An Anthropic upstream (``kind: anthropic``): chat requests sent to ``/v1/messages``.

The pipeline speaks chat completions; this provider translates at the boundary
(``anthropic_format`` for requests, ``anthropic_reply`` for replies and usage), sends
Anthropic's own headers (``x-api-key``, ``anthropic-version``) and places prompt-cache
breakpoints where they pay (``anthropic_cache``), unless the caller placed its own, which
are sent on as they are (``cache_marks``). Errors are read from Anthropic's error
shape (``{"type": "error", "error": {"type", "message"}}``) by the shared HTTP code: a
429 or 529 (overloaded) is retryable, a refused key is the gateway's 502.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from thrifty.errors import StreamInterrupted, UpstreamError
from thrifty.providers.anthropic_cache import CachePlanner
from thrifty.providers.anthropic_format import chat_to_messages, count_breakpoints
from thrifty.providers.anthropic_reply import ChatChunks, message_to_chat
from thrifty.providers.base import ProviderReply
from thrifty.providers.config import ProviderConfig
from thrifty.providers.openai_http import (
    CUT,
    OpenAIHTTPProvider,
    SSEStream,
    cut_mid_answer,
    scrub,
)

log = logging.getLogger(__name__)


class AnthropicProvider(OpenAIHTTPProvider):
    """Anthropic's Messages API over the same pooled session as the OpenAI provider."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.stream_usage = False  # Anthropic streams always carry usage
        headers = {
            "content-type": "application/json",
            "anthropic-version": config.anthropic_version,
            **config.headers,
        }
        if config.api_key:
            headers["x-api-key"] = config.api_key
        self._headers = headers
        self.planner = CachePlanner(config.prompt_cache)

    def _request(self, endpoint: str, body: dict[str, Any]) -> tuple[dict[str, Any], int, int]:
        """The Messages request, the breakpoints Thrifty placed, and the caller's own
        (the planner leaves a request the caller marked as it is)."""
        if endpoint != "chat/completions":
            raise UpstreamError(
                f"upstream {self.name} (anthropic) serves chat completions only, not {endpoint}",
                status=400,
                code="unsupported_endpoint",
            )
        request = chat_to_messages(body, str(body.get("model")))
        placed = self.planner.place(request)
        return request, placed, count_breakpoints(request) - placed

    async def send(self, endpoint: str, body: dict[str, Any]) -> ProviderReply:
        request, placed, own = self._request(endpoint, body)
        reply = await super().send("messages", request)
        chat = message_to_chat(reply.body, request["model"])
        return ProviderReply(chat, reply.status, placed, own)

    async def open_stream(self, endpoint: str, body: dict[str, Any]) -> AnthropicStream:  # type: ignore[override]
        request, placed, own = self._request(endpoint, body)
        request["stream"] = True
        resp = await self._post("messages", request)
        if "text/event-stream" not in resp.headers.get("content-type", ""):
            resp.release()
            raise UpstreamError(f"upstream {self.name} did not answer with an event stream")
        return AnthropicStream(self.name, resp, self._secrets, placed, own)


class AnthropicStream(SSEStream):
    """Anthropic's named SSE events, yielded as chat chunks (see ``ChatChunks``); ends
    normally only after ``message_stop``, else raises :class:`StreamInterrupted`."""

    def __init__(
        self,
        provider: str,
        resp: aiohttp.ClientResponse,
        secrets: tuple[str, ...],
        cache_breakpoints: int,
        caller_cache_breakpoints: int = 0,
    ) -> None:
        super().__init__(provider, resp, secrets)
        self._chunks = ChatChunks(provider)
        self.cache_breakpoints = cache_breakpoints
        self.caller_cache_breakpoints = caller_cache_breakpoints

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        name, data = "", b""
        try:
            async for raw_line in self._resp.content:
                line = raw_line.rstrip(b"\r\n")
                if line.startswith(b"event:"):
                    name = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data += line[5:].lstrip()
                elif not line and data:
                    event = orjson.loads(data)
                    name, data = "", b""
                    if not isinstance(event, dict):
                        raise StreamInterrupted(f"upstream {self._provider} sent a malformed event")
                    try:
                        for chunk in self._chunks.feed(name, event):
                            yield chunk
                    except UpstreamError as exc:
                        exc.message = scrub(exc.message, self._secrets)
                        raise
                    if self._chunks.finished:
                        self.finished = True
                        return
        except CUT as exc:
            raise cut_mid_answer(self._provider, exc) from exc
        finally:
            self._resp.release()
        raise StreamInterrupted(f"upstream {self._provider} stream ended before message_stop")
