"""What the test upstream answers: recorded dataset answers or a deterministic rule.

Everything here is pure (no HTTP, no clock except ``created``), so the same request
always gets the same text, tokens and logprobs, whichever process serves it.

Dataset match rule: a request matches a dataset row when the sha256 of its messages,
reduced to ``role`` + ``content`` and serialised with ``orjson.OPT_SORT_KEYS``, equals
the row's (:func:`thrifty.recordings.dataset.messages_key`). Nothing else (params, tools,
model) takes part.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import sys
import time
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from thrifty.messages import last_user_text, text_of
from thrifty.recordings.dataset import RecordedAnswer, load_dataset, messages_key
from thrifty.tokens import count_text, encoding_for_model

_WORD_LIST = """the be to of and a in that have it for not on with he as you do at this but his
    by from they we say her she or an will my one all would there their what so up out
    if about who get which go me when make can like time no just him know take people
    into year your good some could them see other than then now look only come its over
    think also back after use two how our work first well way even new want because any
    these give day most us great small large early young important public bad same able
    water light world answer model price token cache route cost quality fast simple"""
COMMON_WORDS: tuple[str, ...] = tuple(_WORD_LIST.split())
_REASONING_PREFIXES = ("o1", "o3", "o4")
_REASONING_PER_VISIBLE = 2  # reasoning tokens reported per visible completion token
SYSTEM_FINGERPRINT = "fp_thrifty_upstream"


class InvalidRequest(ValueError):
    """A request the upstream refuses with 400, naming the offending parameter."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


# --------------------------------------------------------------------------- rule


def is_reasoning_model(model: str) -> bool:
    """Reasoning models bill hidden reasoning tokens on top of the visible answer."""
    base = model.rsplit("/", 1)[-1].lower()
    return base.startswith(_REASONING_PREFIXES) or "reason" in base or "thinking" in base


content_text = text_of  # kept for this module's readers


def _byte_stream(seed: bytes) -> Iterator[int]:
    """An endless stable stream of pseudo-random 16-bit numbers derived from ``seed``."""
    counter = 0
    while True:
        block = hashlib.sha256(seed + counter.to_bytes(8, "little")).digest()
        for i in range(0, 32, 2):
            yield int.from_bytes(block[i : i + 2], "little")
        counter += 1


def rule_text(model: str, messages: Sequence[Mapping[str, Any]], index: int = 0) -> str:
    """The deterministic answer of ``model``: "[model] Words ..." of 8–60 common words.

    Derived from sha256(model + last user message) so each model answers with its own
    text and length; ``index`` > 0 (the other ``n`` choices) salts the seed.
    """
    seed = f"{model}\x00{last_user_text(messages)}"
    if index:
        seed += f"\x00{index}"
    numbers = _byte_stream(hashlib.sha256(seed.encode()).digest())
    count = 8 + next(numbers) % 53
    words = [COMMON_WORDS[next(numbers) % len(COMMON_WORDS)] for _ in range(count)]
    words[0] = words[0].capitalize()
    return f"[{model}] {' '.join(words)}."


def filler_text(model: str, tokens: int, salt: str) -> str:
    """Text of ``tokens`` tokens for a recorded answer that kept only its length."""
    numbers = _byte_stream(hashlib.sha256(f"{model}\x00{salt}".encode()).digest())
    words = " ".join(COMMON_WORDS[next(numbers) % len(COMMON_WORDS)] for _ in range(tokens + 8))
    enc, _ = encoding_for_model(model)
    return enc.decode(enc.encode_ordinary(words)[:tokens])


# --------------------------------------------------------------------------- dataset


def canonical_messages(messages: Sequence[Mapping[str, Any]]) -> bytes:
    return orjson.dumps(
        [{"role": m.get("role"), "content": m.get("content")} for m in messages],
        option=orjson.OPT_SORT_KEYS,
    )


def _resolve(answer: RecordedAnswer, model: str, key: str) -> str | None:
    """The text to send; a length-only record gets filler of exactly that length."""
    if answer.text is not None:
        return answer.text
    if answer.output_tokens is not None:
        return filler_text(model, answer.output_tokens, key)
    return None


class Dataset:
    """Recorded answers per prompt and model, from a replay dataset (JSON Lines, or .gz).

    Rows are checked by :func:`thrifty.recordings.dataset.load_dataset` (a bad line raises
    its ``DatasetError``, a ``ValueError``); rows with the same messages are merged.
    """

    def __init__(self, rows: Mapping[str, Mapping[str, RecordedAnswer]]) -> None:
        self._rows = rows
        self.models: tuple[str, ...] = tuple(
            sorted({model for answers in rows.values() for model in answers})
        )

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        rows: dict[str, dict[str, RecordedAnswer]] = {}
        for record in load_dataset(path):
            rows.setdefault(record.key, {}).update(record.answers)
        return cls(rows)

    def lookup(self, messages: Sequence[Mapping[str, Any]], model: str) -> str | None:
        """``model``'s recorded text for these messages, or None when there is none."""
        key = messages_key(messages)
        answer = self._rows.get(key, {}).get(model)
        return _resolve(answer, model, key) if answer is not None else None

    def knows_prompt(self, messages: Sequence[Mapping[str, Any]]) -> bool:
        return messages_key(messages) in self._rows


# --------------------------------------------------------------------------- params


def _int_param(body: Mapping[str, Any], name: str, minimum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidRequest(f"'{name}' must be an integer >= {minimum}", name)
    return value


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
        max_tokens = _int_param(body, "max_completion_tokens", 1)
        if max_tokens is None:
            max_tokens = _int_param(body, "max_tokens", 1)
        response_format = _object_param(body, "response_format")
        stream_options = _object_param(body, "stream_options")
        return cls(
            model=str(body["model"]),
            messages=messages,
            n=_int_param(body, "n", 1) or 1,
            stop=_stops(body),
            max_tokens=max_tokens,
            tool_name=_tool_to_call(body),
            json_mode=response_format.get("type") in ("json_object", "json_schema"),
            logprobs=bool(body.get("logprobs")),
            top_logprobs=_int_param(body, "top_logprobs", 0) or 0,
            stream=bool(body.get("stream")),
            include_usage=bool(stream_options.get("include_usage")),
        )


# --------------------------------------------------------------------------- choices


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


# --------------------------------------------------------------------------- streaming

_PIECE = re.compile(r"\s*\S+|\s+$")


def _choice_deltas(c: Choice) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(delta, logprobs) pairs for one choice, cut where OpenAI cuts them."""
    if c.tool_call is not None:
        call = c.tool_call
        head = {**call, "index": 0, "function": {"name": call["function"]["name"], "arguments": ""}}
        yield {"role": "assistant", "content": None, "tool_calls": [head], "refusal": None}, None
        args = {"index": 0, "function": {"arguments": call["function"]["arguments"]}}
        yield {"tool_calls": [args]}, None
        return
    yield {"role": "assistant", "content": "", "refusal": None}, None
    if c.logprobs is not None:  # one token per chunk, each with its own logprob
        for entry in c.logprobs:
            yield {"content": entry["token"]}, {"content": [entry], "refusal": None}
        return
    for piece in _PIECE.findall(c.content or ""):
        yield {"content": piece}, None


def stream_events(
    completion_id: str, params: ChatParams, choices: Sequence[Choice], usage: dict[str, Any]
) -> list[bytes]:
    """Every SSE event of a streamed completion, ``data: [DONE]`` included."""
    base: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": params.model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if params.include_usage:
        base["usage"] = None

    def event(choice: dict[str, Any] | None, **extra: Any) -> bytes:
        chunk = {**base, "choices": [choice] if choice is not None else [], **extra}
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    events = []
    for c in choices:
        for delta, logprobs in _choice_deltas(c):
            events.append(
                event(
                    {"index": c.index, "delta": delta, "logprobs": logprobs, "finish_reason": None}
                )
            )
        events.append(
            event(
                {"index": c.index, "delta": {}, "logprobs": None, "finish_reason": c.finish_reason}
            )
        )
    if params.include_usage:
        events.append(event(None, usage=usage))
    events.append(b"data: [DONE]\n\n")
    return events


# --------------------------------------------------------------------------- embeddings


def embedding_vector(data: bytes, dimensions: int) -> array[float]:
    """A unit-norm float32 vector derived from sha256 of ``data``."""
    numbers = _byte_stream(hashlib.sha256(data).digest())
    raw = [next(numbers) / 32767.5 - 1.0 for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    vector = array("f", (x / norm for x in raw))
    return vector


def embedding_payload(vector: array[float], encoding_format: str) -> list[float] | str:
    """The vector as JSON floats, or base64 of little-endian float32 as OpenAI sends it."""
    if encoding_format != "base64":
        return vector.tolist()
    if sys.byteorder != "little":
        vector = array("f", vector)
        vector.byteswap()
    return base64.b64encode(vector.tobytes()).decode()
