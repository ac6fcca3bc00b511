"""A chat request's answer shaped exactly as OpenAI shapes a ``chat.completion``.

Shared by the test upstream (which serves it over HTTP) and the replay provider (which
hands it to the pipeline in process), so a recorded answer looks the same either way:
the same choices, finish reasons, logprobs and usage for the same request.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from thrifty.recordings.synthetic import COMMON_WORDS
from thrifty.tokens import count_text, encoding_for_model

_REASONING_PREFIXES = ("o1", "o3", "o4")
_REASONING_PER_VISIBLE = 2  # reasoning tokens reported per visible completion token
SYSTEM_FINGERPRINT = "fp_thrifty_upstream"
MAX_N = 128  # OpenAI's own limits: a larger value is refused, never generated
MAX_TOP_LOGPROBS = 20


class InvalidRequest(ValueError):
    """A request the upstream refuses with 400, naming the offending parameter."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def is_reasoning_model(model: str) -> bool:
    """Reasoning models bill hidden reasoning tokens on top of the visible answer."""
    base = model.rsplit("/", 1)[-1].lower()
    return base.startswith(_REASONING_PREFIXES) or "reason" in base or "thinking" in base


def _int_param(
    body: Mapping[str, Any], name: str, minimum: int, maximum: int | None = None
) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidRequest(f"'{name}' must be an integer >= {minimum}", name)
    if maximum is not None and value > maximum:
        raise InvalidRequest(f"'{name}' must be an integer <= {maximum}", name)
    return value


def _check_message(message: Mapping[str, Any]) -> None:
    """Text parts must hold text and tool calls must be objects (else the token count and
    the answer would fail on them)."""
    content = message.get("content")
    if isinstance(content, list):
        for part in content:
            is_text = isinstance(part, dict) and part.get("type") in (None, "text")
            if is_text and not isinstance(part.get("text"), str):
                raise InvalidRequest("a text content part needs a string 'text'", "messages")
    calls = message.get("tool_calls")
    if calls is None:
        return
    if not isinstance(calls, list) or not all(
        isinstance(c, dict) and isinstance(c.get("function") or {}, dict) for c in calls
    ):
        raise InvalidRequest("'tool_calls' must be a list of objects", "messages")


def _object_param(body: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{name}' must be an object", name)
    return value


def _tool_to_call(body: Mapping[str, Any]) -> str | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be a list", "tools")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name:
            return str(name)
    first = tools[0] if isinstance(tools[0], dict) else {}
    name = (first.get("function") or {}).get("name")
    if not name:
        raise InvalidRequest("each tool needs function.name", "tools")
    return str(name)


def _stops(body: Mapping[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return tuple(s for s in stop if s)
    raise InvalidRequest("'stop' must be a string or a list of strings", "stop")


@dataclass(frozen=True, slots=True)
class ChatParams:
    """The parts of a chat request that shape the answer."""

    model: str
    messages: list[dict[str, Any]]
    n: int = 1
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None
    tool_name: str | None = None
    json_mode: bool = False
    logprobs: bool = False
    top_logprobs: int = 0
    stream: bool = False
    include_usage: bool = False

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> ChatParams:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidRequest("'messages' must be a non-empty list", "messages")
        if not all(isinstance(m, dict) for m in messages):
            raise InvalidRequest("each message must be an object", "messages")
        for message in messages:
            _check_message(message)
        max_tokens = _int_param(body, "max_completion_tokens", 1)
        if max_tokens is None:
            max_tokens = _int_param(body, "max_tokens", 1)
        response_format = _object_param(body, "response_format")
        stream_options = _object_param(body, "stream_options")
        return cls(
            model=str(body["model"]),
            messages=messages,
            n=_int_param(body, "n", 1, MAX_N) or 1,
            stop=_stops(body),
            max_tokens=max_tokens,
            tool_name=_tool_to_call(body),
            json_mode=response_format.get("type") in ("json_object", "json_schema"),
            logprobs=bool(body.get("logprobs")),
            top_logprobs=_int_param(body, "top_logprobs", 0, MAX_TOP_LOGPROBS) or 0,
            stream=bool(body.get("stream")),
            include_usage=bool(stream_options.get("include_usage")),
        )


@dataclass(frozen=True, slots=True)
class Choice:
    """One generated choice and the completion tokens it costs."""

    index: int
    content: str | None
    tool_call: dict[str, Any] | None
    finish_reason: str
    logprobs: list[dict[str, Any]] | None
    visible_tokens: int
    reasoning_tokens: int


def _logprob(seed: bytes, position: int) -> float:
    digest = hashlib.sha256(seed + position.to_bytes(8, "little")).digest()
    return round(-2.0 * int.from_bytes(digest[:4], "little") / 2**32, 6)


def _token_logprobs(params: ChatParams, text: str) -> list[dict[str, Any]]:
    """One logprob entry per output token, each in [-2, 0], stable for the same text."""
    enc, _ = encoding_for_model(params.model)
    seed = hashlib.sha256(f"{params.model}\x00{text}".encode()).digest()
    entries = []
    for position, token in enumerate(enc.encode_ordinary(text)):
        raw = enc.decode_single_token_bytes(token)
        logprob = _logprob(seed, position)
        top = [{"token": raw.decode("utf-8", "replace"), "bytes": list(raw), "logprob": logprob}]
        for rank in range(1, params.top_logprobs):
            word = " " + COMMON_WORDS[(token + rank) % len(COMMON_WORDS)]
            alt = round(logprob - 1.0 - rank, 6)
            top.append({"token": word, "bytes": list(word.encode()), "logprob": alt})
        entries.append({**top[0], "top_logprobs": top if params.top_logprobs else []})
    return entries


def _tool_choice(params: ChatParams, index: int) -> Choice:
    name = params.tool_name or ""
    call_id = "call_" + hashlib.sha256(f"{params.model}\x00{name}\x00{index}".encode()).hexdigest()
    call = {"id": call_id[:29], "type": "function", "function": {"name": name, "arguments": "{}"}}
    visible = count_text(name, params.model).tokens + count_text("{}", params.model).tokens
    return Choice(index, None, call, "tool_calls", None, visible, _reasoning(params, visible))


def _reasoning(params: ChatParams, visible: int) -> int:
    return _REASONING_PER_VISIBLE * visible if is_reasoning_model(params.model) else 0


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


def build_choice(params: ChatParams, text: str, index: int) -> Choice:
    """Shape ``text`` as choice ``index``: tool call, JSON mode, stop, then max_tokens.

    For reasoning models ``max_tokens`` also pays for reasoning (2 tokens per visible
    one), so only a third of it is visible, as with OpenAI's o-series.
    """
    if params.tool_name:
        return _tool_choice(params, index)
    if params.json_mode:
        text = orjson.dumps({"answer": text}).decode()
    finish = "stop"
    text = _cut_at_stop(text, params.stop)
    if params.max_tokens is not None:
        limit = params.max_tokens
        if is_reasoning_model(params.model):
            limit //= 1 + _REASONING_PER_VISIBLE
        enc, _ = encoding_for_model(params.model)
        tokens = enc.encode_ordinary(text)
        if len(tokens) > limit:
            text, finish = enc.decode(tokens[:limit]), "length"
    visible = count_text(text, params.model).tokens
    logprobs = _token_logprobs(params, text) if params.logprobs else None
    return Choice(index, text, None, finish, logprobs, visible, _reasoning(params, visible))


def usage_body(prompt_tokens: int, cached_tokens: int, choices: Sequence[Choice]) -> dict[str, Any]:
    reasoning = sum(c.reasoning_tokens for c in choices)
    completion = sum(c.visible_tokens for c in choices) + reasoning
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_body(
    completion_id: str, params: ChatParams, choices: Sequence[Choice], usage: dict[str, Any]
) -> dict[str, Any]:
    """A ``chat.completion`` object exactly as OpenAI shapes it."""
    out = []
    for c in choices:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": c.content,
            "refusal": None,
            "annotations": [],
        }
        if c.tool_call:
            message["tool_calls"] = [c.tool_call]
        logprobs = {"content": c.logprobs, "refusal": None} if c.logprobs is not None else None
        out.append(
            {
                "index": c.index,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": c.finish_reason,
            }
        )
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": params.model,
        "choices": out,
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
