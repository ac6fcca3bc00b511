"""Token counts for calls whose upstream reported no usable usage (priced, and flagged
``estimated``; ``approximate`` too when the tokenizer is not the model's own).

The prompt count includes the tool and ``response_format`` schemas; the answer count
includes reasoning (``reasoning_content``, DeepSeek's and vLLM's field), counted as
reasoning tokens, besides the content and tool calls.
"""

from __future__ import annotations

from typing import Any

from thrifty.tokens import count_request, count_text
from thrifty.usage import Usage

#: Keys of a ``response`` dict that carry an already-joined streamed answer.
STREAMED_TEXT = "_streamed_text"
STREAMED_REASONING = "_streamed_reasoning"
#: Message/delta fields that hold reasoning text (DeepSeek, vLLM, OpenRouter).
REASONING_FIELDS = ("reasoning_content", "reasoning")


def collect_texts(message: dict[str, Any], texts: list[str], reasoning: list[str]) -> None:
    """Append a message's (or a stream delta's) answer text (content, tool names and
    arguments) to ``texts`` and its reasoning text to ``reasoning``; values of the wrong
    type count as no text."""
    content = message.get("content")
    if isinstance(content, str):
        texts.append(content)
    for field in REASONING_FIELDS:
        thought = message.get(field)
        if isinstance(thought, str):
            reasoning.append(thought)
            break
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            texts.extend(p for p in (function.get("name"), function.get("arguments"))
                         if isinstance(p, str))  # fmt: skip


def _answer_texts(response: dict[str, Any]) -> tuple[str, str]:
    """(answer text, reasoning text) of a complete reply or a joined stream."""
    if STREAMED_TEXT in response:
        return str(response[STREAMED_TEXT]), str(response.get(STREAMED_REASONING) or "")
    texts: list[str] = []
    reasoning: list[str] = []
    choices = response.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            collect_texts(message, texts, reasoning)
    return "".join(texts), "".join(reasoning)


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
    prompt = count_request(request, model)
    text, reasoning_text = _answer_texts(response)
    completion = count_text(text, model)
    reasoning = count_text(reasoning_text, model) if reasoning_text else None
    reasoning_tokens = reasoning.tokens if reasoning else 0
    return Usage(
        input_tokens=prompt.tokens,
        output_tokens=completion.tokens + reasoning_tokens,
        reasoning_tokens=reasoning_tokens,
        estimated=True,
        approximate=prompt.approximate or completion.approximate,
    )
