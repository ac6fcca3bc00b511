"""What the router and its learned parts look at in a request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from thrifty.messages import last_user_text, text_of

MAX_CHARS = 4000  # long prompts: their head says what the task is


def prompt_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The last user message (what is being asked now), bounded in length."""
    text = last_user_text(messages)
    if not text and messages:
        text = text_of(messages[-1].get("content"))
    return text[:MAX_CHARS]
