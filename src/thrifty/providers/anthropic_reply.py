"""Replies between the two dialects: Anthropic Messages ⇄ OpenAI chat completions.

Usage is where the dialects differ most: Anthropic's ``input_tokens`` *excludes* cache
reads and cache writes, which it reports beside it (``cache_read_input_tokens``,
``cache_creation_input_tokens``); OpenAI's ``prompt_tokens`` *includes* the cached part.
:func:`usage_to_openai` and :func:`usage_from_counts` are the two directions of that one
mapping; the reading itself (what the counts mean, which are impossible) is
:func:`thrifty.usage.from_anthropic`, the one Anthropic reader.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson

from thrifty.errors import StreamInterrupted, UpstreamError
from thrifty.usage import UsageError, from_anthropic

STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

Event = tuple[str, dict[str, Any]]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_to_openai(usage: Any) -> dict[str, Any]:
    """An Anthropic ``usage`` object as an OpenAI one (prompt = input + reads + writes).

    Usage that cannot be true is passed on as it came: the gateway's usage reader refuses
    it there, logs it and counts the tokens itself, as for any provider.
    """
    try:
        read = from_anthropic(usage)
    except UsageError:
        return usage if isinstance(usage, dict) else {}
    if read is None:
        return {}
    body = read.to_openai()
    body["prompt_tokens_details"]["cache_creation_tokens"] = read.cache_write_tokens
    if read.cache_write_1h_tokens:  # priced at their own rate: the split must survive
        body["prompt_tokens_details"]["cache_write_1h_tokens"] = read.cache_write_1h_tokens
    return body


def usage_from_counts(
    input_tokens: int, cached: int, writes: int, output: int, writes_1h: int = 0
) -> dict[str, Any]:
    """An Anthropic ``usage`` object from whole-prompt counts (input *includes* the cache);
    ``writes_1h`` of ``writes`` were to the 1-hour cache (``cache_creation`` splits them)."""
    usage: dict[str, Any] = {
        "input_tokens": max(0, input_tokens - cached - writes),
        "cache_creation_input_tokens": writes,
        "cache_read_input_tokens": cached,
        "output_tokens": output,
    }
    if writes_1h:
        usage["cache_creation"] = {
            "ephemeral_5m_input_tokens": writes - writes_1h,
            "ephemeral_1h_input_tokens": writes_1h,
        }
    return usage


# ---------------------------------------------------------------- Messages → chat


def message_to_chat(message: dict[str, Any], model: str) -> dict[str, Any]:
    """A Messages reply as a ``chat.completion`` body."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": arguments},
                }
            )
    chat_message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        chat_message["tool_calls"] = calls
    finish = STOP_TO_FINISH.get(str(message.get("stop_reason")), "stop")
    return {
        "id": message.get("id") or "msg",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model") or model,
        "choices": [
            {"index": 0, "message": chat_message, "logprobs": None, "finish_reason": finish}
        ],
        "usage": usage_to_openai(message.get("usage")),
    }


class ChatChunks:
    """Turns an Anthropic event stream into chat chunks, event by event (the provider's
    stream). ``finished`` is true once ``message_stop`` arrived."""

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._base: dict[str, Any] = {
            "object": "chat.completion.chunk",
            "created": int(time.time()),
        }
        self._usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self.finished = False

    def _chunk(
        self, delta: dict[str, Any] | None, finish: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        choices = (
            []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        )
        return {**self._base, "choices": choices, **extra}

    def feed(self, name: str, data: dict[str, Any]) -> Iterator[dict[str, Any]]:
        kind = data.get("type") or name
        if kind == "message_start":
            message = data.get("message") or {}
            self._base.update(id=message.get("id") or "msg", model=message.get("model") or "")
            self._usage.update(message.get("usage") or {})
            yield self._chunk({"role": "assistant", "content": ""})
        elif kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self._tools[_int(data.get("index"))] = len(self._tools)
                call = {
                    "index": index,
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""},
                }
                yield self._chunk({"tool_calls": [call]})
            elif block.get("type") == "text" and block.get("text"):
                yield self._chunk({"content": block["text"]})
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                yield self._chunk({"content": str(delta.get("text") or "")})
            elif delta.get("type") == "input_json_delta":
                index = self._tools.get(_int(data.get("index")), 0)
                arguments = {
                    "index": index,
                    "function": {"arguments": str(delta.get("partial_json") or "")},
                }
                yield self._chunk({"tool_calls": [arguments]})
        elif kind == "message_delta":
            self._usage.update(
                {k: v for k, v in (data.get("usage") or {}).items() if v is not None}
            )
            stop = (data.get("delta") or {}).get("stop_reason")
            yield self._chunk({}, STOP_TO_FINISH.get(str(stop), "stop"))
        elif kind == "message_stop":
            self.finished = True
            yield self._chunk(None, usage=usage_to_openai(self._usage))
        elif kind == "error":
            error = data.get("error") or {}
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise UpstreamError(f"upstream {self._provider} stream error: {message}")
        elif kind not in ("ping", "content_block_stop"):
            raise StreamInterrupted(
                f"upstream {self._provider} sent an unknown stream event {kind!r}"
            )


# ---------------------------------------------------------------- chat → Messages


def chat_to_message(
    body: dict[str, Any], usage: dict[str, Any], message_id: str | None = None
) -> dict[str, Any]:
    """A ``chat.completion`` body as a Messages reply with Anthropic ``usage``."""
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": _parsed(function.get("arguments")),
            }
        )
    return {
        "id": message_id or "msg_" + str(body.get("id") or "").removeprefix("chatcmpl-"),
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": content,
        "stop_reason": FINISH_TO_STOP.get(str(choice.get("finish_reason")), "end_turn"),
        "stop_sequence": None,
        "usage": usage,
    }


def _parsed(arguments: Any) -> Any:
    try:
        value = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {"raw": arguments}
    return value if isinstance(value, dict) else {"value": value}


class MessageEvents:
    """Turns chat chunks into Anthropic's stream events (the gateway's ``/v1/messages``
    stream and the test upstream's): ``message_start``, a ``content_block_*`` triple per
    text or tool call, ``message_delta`` (stop reason, usage), ``message_stop``."""

    def __init__(self, message_id: str, model: str) -> None:
        self._id = message_id
        self._model = model
        self._open: tuple[str, int] | None = None  # ("text" | tool call index, block index)
        self._blocks = 0
        self._stop: str | None = None
        self.started = False
        self.done = False

    def start(self, usage: dict[str, Any] | None = None) -> Iterator[Event]:
        self.started = True
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage or {"input_tokens": 0, "output_tokens": 0},
        }
        yield "message_start", {"type": "message_start", "message": message}

    def _close_block(self) -> Iterator[Event]:
        if self._open is not None:
            yield "content_block_stop", {"type": "content_block_stop", "index": self._open[1]}
            self._open = None

    def _open_block(self, key: str, block: dict[str, Any]) -> Iterator[Event]:
        yield from self._close_block()
        self._open = (key, self._blocks)
        self._blocks += 1
        yield (
            "content_block_start",
            {"type": "content_block_start", "index": self._open[1], "content_block": block},
        )

    def feed(self, chunk: dict[str, Any]) -> Iterator[Event]:
        if not self.started:
            yield from self.start()
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                if self._open is None or self._open[0] != "text":
                    yield from self._open_block("text", {"type": "text", "text": ""})
                assert self._open is not None
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": self._open[1],
                        "delta": {"type": "text_delta", "text": delta["content"]},
                    },
                )
            for call in delta.get("tool_calls") or ():
                yield from self._tool_delta(call)
            if choice.get("finish_reason"):
                self._stop = FINISH_TO_STOP.get(str(choice["finish_reason"]), "end_turn")

    def _tool_delta(self, call: dict[str, Any]) -> Iterator[Event]:
        key = f"tool{call.get('index', 0)}"
        function = call.get("function") or {}
        if self._open is None or self._open[0] != key:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": function.get("name") or "",
                "input": {},
            }
            yield from self._open_block(key, block)
        assert self._open is not None
        if function.get("arguments"):
            yield (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": self._open[1],
                    "delta": {"type": "input_json_delta", "partial_json": function["arguments"]},
                },
            )

    def finish(self, usage: dict[str, Any]) -> Iterator[Event]:
        """The closing events, with the whole call's Anthropic ``usage``."""
        if self.done:
            return
        if not self.started:
            yield from self.start()
        yield from self._close_block()
        self.done = True
        delta = {"stop_reason": self._stop or "end_turn", "stop_sequence": None}
        yield "message_delta", {"type": "message_delta", "delta": delta, "usage": usage}
        yield "message_stop", {"type": "message_stop"}


def sse(name: str, data: dict[str, Any]) -> bytes:
    """One named SSE event (Anthropic's SDK reads the ``event:`` line)."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


#: Anthropic's error ``type`` for each HTTP status it uses.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}}`` for an HTTP status."""
    kind = ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}
