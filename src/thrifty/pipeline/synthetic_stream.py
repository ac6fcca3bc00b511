"""Serve a complete chat.completion to a streaming client as a proper chunk stream.

Used when the answer exists before the client sees a byte: a cascade's accepted answer,
a cache hit. The chunks follow OpenAI's shape (a role chunk, content pieces, a finish
chunk, then a usage chunk if the client asked for one).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

_PIECE = re.compile(r"\S+\s*|\s+")


def _chunk(body: dict[str, Any], choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": body.get("id"),
        "object": "chat.completion.chunk",
        "created": body.get("created"),
        "model": body.get("model"),
        "system_fingerprint": body.get("system_fingerprint"),
        "choices": choices,
        **extra,
    }


async def stream_completion(
    body: dict[str, Any], include_usage: bool
) -> AsyncIterator[dict[str, Any]]:
    for choice in body.get("choices") or ():
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        yield _chunk(
            body,
            [
                {
                    "index": index,
                    "delta": {"role": "assistant", "content": ""},
                    "finish_reason": None,
                }
            ],
        )
        for piece in _PIECE.findall(message.get("content") or ""):
            yield _chunk(
                body, [{"index": index, "delta": {"content": piece}, "finish_reason": None}]
            )
        if message.get("tool_calls"):
            calls = [{**call, "index": i} for i, call in enumerate(message["tool_calls"])]
            yield _chunk(
                body, [{"index": index, "delta": {"tool_calls": calls}, "finish_reason": None}]
            )
        yield _chunk(
            body, [{"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}]
        )
    if include_usage and body.get("usage"):
        yield _chunk(body, [], usage=body["usage"])
