"""What the router and its learned parts look at in a request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAX_CHARS = 4000  # long prompts: their head says what the task is


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def prompt_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The last user message (what is being asked now), bounded in length."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))[:MAX_CHARS]
    return content_text(messages[-1].get("content"))[:MAX_CHARS] if messages else ""
