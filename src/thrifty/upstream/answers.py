"""What the test upstream answers: recorded dataset answers, shaped and streamed.

The rule answer and the ``chat.completion`` shape live in ``thrifty.recordings`` (the
replay provider shares them). Everything here is pure (no HTTP, no clock except
``created``), so the same request always gets the same text, tokens and logprobs,
whichever process serves it.

Dataset match rule: a request matches a dataset row when the sha256 of its messages,
reduced to ``role`` + ``content`` and serialised with ``orjson.OPT_SORT_KEYS``, equals
the row's (:func:`thrifty.recordings.dataset.messages_key`). Nothing else (params, tools,
model) takes part.
"""

from __future__ import annotations

import base64
import re
import sys
import time
from array import array
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from thrifty.messages import text_of
from thrifty.recordings.completion import SYSTEM_FINGERPRINT, ChatParams, Choice
from thrifty.recordings.dataset import RecordedAnswer, load_dataset, messages_key
from thrifty.recordings.synthetic import answer_text

content_text = text_of  # kept for this module's readers


# --------------------------------------------------------------------------- dataset


def canonical_messages(messages: Sequence[Mapping[str, Any]]) -> bytes:
    return orjson.dumps(
        [{"role": m.get("role"), "content": m.get("content")} for m in messages],
        option=orjson.OPT_SORT_KEYS,
    )


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
        return answer_text(answer, model, key) if answer is not None else None

    def quality_of(self, messages: Sequence[Mapping[str, Any]], text: str) -> float | None:
        """The recorded quality of the answer to ``messages`` whose text is ``text``."""
        key = messages_key(messages)
        for model, answer in self._rows.get(key, {}).items():
            if answer.quality is not None and answer_text(answer, model, key) == text:
                return answer.quality
        return None

    def knows_prompt(self, messages: Sequence[Mapping[str, Any]]) -> bool:
        return messages_key(messages) in self._rows


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


def embedding_payload(vector: array[float], encoding_format: str) -> list[float] | str:
    """The vector as JSON floats, or base64 of little-endian float32 as OpenAI sends it."""
    if encoding_format != "base64":
        return vector.tolist()
    if sys.byteorder != "little":
        vector = array("f", vector)
        vector.byteswap()
    return base64.b64encode(vector.tobytes()).decode()
