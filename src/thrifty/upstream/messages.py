"""``POST /v1/messages``: the test upstream answering as Anthropic's Messages API.

Same answers, latency and faults as its chat route (the request is read as the chat
request it maps to), shaped as Anthropic shapes them: ``x-api-key`` auth, errors as
``{"type": "error", "error": {...}}``, named SSE events, and Anthropic's prompt caching
simulated. The key may come as ``x-api-key`` or ``Authorization: Bearer`` (as recent
``anthropic`` SDKs send it). Only prefixes the request marks with ``cache_control`` are
cached: a marked prefix of at least 1024 tokens seen before is a read
(``cache_read_input_tokens``), else it is written (``cache_creation_input_tokens``; the
stretch a ``"ttl": "1h"`` mark ends goes to the 1-hour cache, ``cache_creation``);
``input_tokens`` is the rest. Marks are checked as Anthropic checks them (at most four,
``{"type": "ephemeral"}`` with an optional ``ttl``), by the request mapping it shares
with the gateway (``anthropic_format.messages_to_chat``): else a 400.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from thrifty.errors import InvalidRequest as GatewayInvalidRequest
from thrifty.providers.anthropic_cache import at_path, units
from thrifty.providers.anthropic_format import messages_to_chat
from thrifty.providers.anthropic_reply import (
    MessageEvents,
    chat_to_message,
    error_body,
    sse,
    usage_from_counts,
)
from thrifty.recordings.completion import (
    ChatParams,
    InvalidRequest,
    build_choice,
    completion_body,
    usage_body,
)
from thrifty.upstream.answers import stream_events
from thrifty.upstream.faults import EventStreamResponse, TruncatedResponse

if TYPE_CHECKING:
    from thrifty.upstream.app import Upstream

CACHE_MIN_TOKENS = 1024


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(error_body(status, message)), status, headers, media_type="application/json"
    )


def _as_anthropic(reply: Response) -> Response:
    """An OpenAI-shaped error reply of the shared steps, in Anthropic's shape."""
    try:
        message = orjson.loads(bytes(reply.body))["error"]["message"]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return reply  # not a JSON error (a reset, a 499): as it is
    retry = reply.headers.get("retry-after")
    return _error(reply.status_code, str(message), {"retry-after": retry} if retry else None)


class MarkedCache:
    """Anthropic's prompt cache: prefixes written at ``cache_control`` breakpoints."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def clear(self) -> None:
        self._seen.clear()

    def usage(self, request: dict[str, Any]) -> tuple[int, int, int, int]:
        """``(input tokens of the whole prompt, cache reads, cache writes, of those the
        1-hour ones)``: the stretch up to a mark is written with that mark's ``ttl``."""
        walk = list(units(request))
        total = walk[-1].tokens if walk else 0
        marks = [
            (u, at_path(request, u.path)["cache_control"])
            for u in walk
            if u.tokens >= CACHE_MIN_TOKENS and "cache_control" in at_path(request, u.path)
        ]
        cached = max((u.tokens for u, _ in marks if u.digest in self._seen), default=0)
        writes = max(0, marks[-1][0].tokens - cached) if marks else 0
        hour, start = 0, cached
        for unit, mark in marks:
            if unit.tokens > start and isinstance(mark, dict) and mark.get("ttl") == "1h":
                hour += unit.tokens - start
            start = max(start, unit.tokens)
        for unit, _ in marks:
            self._seen[unit.digest] = None
            self._seen.move_to_end(unit.digest)
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return total, cached, writes, hour


class MessagesRoute:
    """The handler; shares the upstream's dataset, stats and faults."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def _denied(self, request: Request) -> Response | None:
        key = self.upstream.options.api_key
        given = request.headers.get("x-api-key") or request.headers.get("authorization", "")
        if key is None or hmac.compare_digest(given.removeprefix("Bearer ").encode(), key.encode()):
            return None
        return _error(401, "invalid x-api-key")

    async def handle(self, request: Request) -> Response:
        from thrifty.upstream.app import _Reject

        upstream = self.upstream
        upstream.stats.by_endpoint["messages"] += 1
        if (denied := self._denied(request)) is not None:
            return denied
        try:
            body = orjson.loads(await request.body())
            model = body.get("model") if isinstance(body, dict) else None
            if not isinstance(model, str) or not model:
                return _error(400, "model: Field required")
            upstream.stats.count_model("messages", model)
            if upstream.options.models and model not in upstream.options.models:
                return _error(404, f"model: {model}")
            chat = {**messages_to_chat(body), "model": model}
            chat.pop("stream_options", None)
            params = ChatParams.parse(chat)
            text = upstream._answer_texts(params)[0]
            cut, reply = await upstream._disturb(request, model)
        except orjson.JSONDecodeError:
            return _error(400, "the request body is not valid JSON")
        except (InvalidRequest, GatewayInvalidRequest) as exc:
            return _error(400, str(exc))
        except _Reject as reject:
            return _as_anthropic(reject.reply)
        if reply is not None:
            return _as_anthropic(reply)
        choice = build_choice(params, text, 0)
        total, cached, writes, hour = upstream.marked.usage(body)
        usage = usage_from_counts(total, cached, writes, choice.visible_tokens, hour)
        message_id = "msg_" + secrets.token_hex(12)
        chat_reply = completion_body(message_id, params, [choice], usage_body(total, 0, [choice]))
        if not params.stream:
            payload = orjson.dumps(chat_to_message(chat_reply, usage, message_id))
            if cut is not None and cut.kind == "cut":
                return TruncatedResponse(payload, len(payload) // 2)
            return Response(payload, media_type="application/json")
        events = MessageEvents(message_id, model)
        out = [sse(*e) for e in events.start({**usage, "output_tokens": 1})]
        for raw in stream_events(message_id, params, [choice], {})[:-1]:  # no [DONE]
            for event in events.feed(orjson.loads(raw.removeprefix(b"data: "))):
                out.append(sse(*event))
        out += [sse(*e) for e in events.finish(usage)]
        return EventStreamResponse(out, 0.0, cut.after if cut and cut.kind == "cut" else None)
