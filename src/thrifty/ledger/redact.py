"""Redaction of captured bodies by pattern, before they are stored (``ledger.redact``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["MASK", "Redactor"]

MASK = "[redacted]"


class Redactor:
    """Replaces every match of any of ``patterns`` (regular expressions) by :data:`MASK`
    in a text, or in the string contents and text parts of chat messages."""

    def __init__(self, patterns: Sequence[str]) -> None:
        # one by one: a pattern may carry its own inline flags, e.g. ``(?i)``
        self._patterns = tuple(re.compile(p) for p in patterns)

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def text(self, value: str | None) -> str | None:
        if value is None:
            return value
        for pattern in self._patterns:
            value = pattern.sub(MASK, value)
        return value

    def messages(self, messages: Any) -> Any:
        if not self._patterns or not isinstance(messages, list):
            return messages
        return [self._message(m) for m in messages]

    def _message(self, message: Any) -> Any:
        if not isinstance(message, dict):
            return message
        content = message.get("content")
        if isinstance(content, str):
            return {**message, "content": self.text(content)}
        if isinstance(content, list):
            parts = [
                {**p, "text": self.text(p["text"])}
                if isinstance(p, dict) and isinstance(p.get("text"), str)
                else p
                for p in content
            ]
            return {**message, "content": parts}
        return message
