"""What a request needs from a model: context room and capabilities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from thrifty.registry import ResolvedModel


def needed_capabilities(body: Mapping[str, Any]) -> frozenset[str]:
    needs = set()
    if body.get("tools") or body.get("functions"):
        needs.add("tools")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        needs.add("json_schema")
    for message in body.get("messages") or ():
        content = message.get("content")
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") in ("image_url", "input_image") for p in content
        ):
            needs.add("vision")
    return frozenset(needs)


def why_unfit(
    model: ResolvedModel, prompt_tokens: int, max_output: int, needs: frozenset[str]
) -> str | None:
    """Why ``model`` cannot take this request, or None if it can.

    A model whose capabilities are unknown (priced in config, not in the catalogue) is
    assumed capable unless the config lists its capabilities.
    """
    if model.context_window and prompt_tokens + max_output > model.context_window:
        return f"context window {model.context_window} < {prompt_tokens} + {max_output} tokens"
    known = model.capabilities
    if known is not None:
        missing = sorted(needs - known)
        if missing:
            return f"lacks {', '.join(missing)}"
    return None
