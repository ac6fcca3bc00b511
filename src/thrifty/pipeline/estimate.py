"""Token counts for calls whose upstream reported no usage (priced, and flagged estimated)."""

from __future__ import annotations

from typing import Any

from thrifty.tokens import count_messages, count_text
from thrifty.usage import Usage


def _completion_text(response: dict[str, Any]) -> str:
    if "_streamed_text" in response:
        return str(response["_streamed_text"])
    parts: list[str] = []
    for choice in response.get("choices") or ():
        message = choice.get("message") or {}
        parts.append(message.get("content") or "")
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            parts.append(function.get("name") or "")
            parts.append(function.get("arguments") or "")
    return "".join(parts)


def estimate_usage(
    endpoint: str, request: dict[str, Any], response: dict[str, Any], model: str
) -> Usage:
    if endpoint == "embeddings":
        inputs = request.get("input")
        texts = (
            [inputs] if isinstance(inputs, str) else [t for t in inputs or () if isinstance(t, str)]
        )
        counts = [count_text(t, model) for t in texts]
        tokens = sum(c.tokens for c in counts)
        return Usage(
            input_tokens=tokens, estimated=True, approximate=any(c.approximate for c in counts)
        )
    prompt = count_messages(request.get("messages") or [], model)
    completion = count_text(_completion_text(response), model)
    return Usage(
        input_tokens=prompt.tokens,
        output_tokens=completion.tokens,
        estimated=True,
        approximate=prompt.approximate or completion.approximate,
    )
