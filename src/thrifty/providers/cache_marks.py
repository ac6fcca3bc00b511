"""A caller's own prompt-cache breakpoints (``cache_control``) in the chat form.

Anthropic's clients mark where a cached prefix ends; Thrifty keeps those marks in the chat
body every technique works on, on the pieces that carry them: content parts (text, image,
a ``tool`` message's text), tool calls and tool definitions (and a chat client's mark on
a whole message, which stands for its last block). A ``kind: anthropic``
provider sends them on at the same positions (``anthropic_format.chat_to_messages``); an
OpenAI-kind provider strips them (:func:`strip_cache_control`), since OpenAI and most
compatible servers reject a field they do not know and cache prefixes by themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from thrifty.errors import InvalidRequest

#: Anthropic's limit of ``cache_control`` breakpoints per request.
MAX_BREAKPOINTS = 4
#: The ``cache_control.ttl`` values Anthropic accepts.
CACHE_TTLS = ("5m", "1h")
KEY = "cache_control"


def valid_mark(block: dict[str, Any], where: str) -> dict[str, Any] | None:
    """``block``'s ``cache_control`` when it is one Anthropic accepts (``{"type":
    "ephemeral"}``, optionally ``"ttl": "5m" | "1h"``), None when absent; else a 400."""
    mark = block.get(KEY)
    if mark is None:
        return None
    if (
        not isinstance(mark, dict)
        or mark.get("type") != "ephemeral"
        or mark.get("ttl", "5m") not in CACHE_TTLS
        or set(mark) - {"type", "ttl"}
    ):
        raise InvalidRequest(
            f'{where}.cache_control must be {{"type": "ephemeral"}}, with an optional'
            ' "ttl" of "5m" or "1h"',
            param=f"{where}.cache_control",
        )
    return mark


def marked(piece: dict[str, Any], mark: dict[str, Any] | None) -> dict[str, Any]:
    """``piece`` carrying ``mark`` (itself when there is none)."""
    return piece if mark is None else {**piece, KEY: mark}


def carried(piece: dict[str, Any], source: Any) -> dict[str, Any]:
    """``piece`` carrying ``source``'s mark, if it has one (the provider side: Anthropic
    validates what a chat client wrote)."""
    mark = source.get(KEY) if isinstance(source, dict) else None
    return marked(piece, mark if isinstance(mark, dict) else None)


def _pieces(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every piece of a chat body that may carry a mark (a whole message too: the
    Anthropic provider puts its mark on the message's last block)."""
    for tool in body.get("tools") or ():
        if isinstance(tool, dict):
            yield tool
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        yield message
        content = message.get("content")
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict):
                yield part
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                yield call


def check_limit(found: int) -> None:
    """A 400 past Anthropic's :data:`MAX_BREAKPOINTS` (what Anthropic itself would say,
    said before any upstream is paid)."""
    if found > MAX_BREAKPOINTS:
        raise InvalidRequest(
            f"a request may carry at most {MAX_BREAKPOINTS} cache_control breakpoints"
            f" (Anthropic's limit); found {found}",
            param="cache_control",
        )


def has_marks(body: dict[str, Any]) -> bool:
    """Whether a chat body carries a ``cache_control`` anywhere one may be put."""
    return any(KEY in piece for piece in _pieces(body))


def strip_cache_control(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without any ``cache_control`` mark (itself when it has none; the caller's
    body is never changed: what is marked is copied)."""
    if not has_marks(body):
        return body

    def bare(piece: Any) -> Any:
        if isinstance(piece, dict) and KEY in piece:
            return {k: v for k, v in piece.items() if k != KEY}
        return piece

    out = dict(body)
    if isinstance(body.get("tools"), list):
        out["tools"] = [bare(t) for t in body["tools"]]
    messages = []
    for message in body.get("messages") or ():
        message = bare(message)
        if isinstance(message, dict):
            message = dict(message)
            if isinstance(message.get("content"), list):
                message["content"] = [bare(p) for p in message["content"]]
            if isinstance(message.get("tool_calls"), list):
                message["tool_calls"] = [bare(c) for c in message["tool_calls"]]
        messages.append(message)
    if "messages" in body:
        out["messages"] = messages
    return out
