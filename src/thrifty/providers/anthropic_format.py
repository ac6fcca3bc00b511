"""Requests between the two dialects: OpenAI chat ⇄ Anthropic Messages.

The Anthropic provider sends a chat body as a Messages request (:func:`chat_to_messages`);
the gateway's ``POST /v1/messages`` turns a Messages request into the chat body every
technique works on (:func:`messages_to_chat`). Both raise :class:`InvalidRequest`
(naming the parameter) for what has no counterpart, never a silent drop of content.

A caller's own prompt-cache breakpoints (``cache_control``) travel both ways at the same
positions: on text and image parts, on a ``tool`` message's text part (the
``tool_result`` block), on a tool call (the ``tool_use`` block) and on a tool definition.
The chat form keeps content as parts wherever a part is marked (no joined string), so the
mark stays where the caller put it; an OpenAI-kind provider strips them
(``cache_marks.strip_cache_control``). Anthropic allows four per request: more is a 400
here, not an upstream error.
"""

from __future__ import annotations

from typing import Any

import orjson

from thrifty.errors import InvalidRequest
from thrifty.providers.cache_marks import carried, check_limit, marked, valid_mark

ANTHROPIC_VERSION = "2023-06-01"
#: Anthropic requires ``max_tokens``; a chat body without one gets this.
DEFAULT_MAX_TOKENS = 4096

# ---------------------------------------------------------------- chat → Messages


def _text_of(content: Any) -> str:
    """The text of chat content (a string, or text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text") or "")
            for p in content
            if isinstance(p, dict) and p.get("type") in (None, "text")
        )
    return ""


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    url = (
        (part.get("image_url") or {}).get("url")
        if isinstance(part.get("image_url"), dict)
        else None
    )
    if not isinstance(url, str):
        raise InvalidRequest("an image_url part needs image_url.url", param="messages")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";")[0] or "image/png"
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    """Chat content as Anthropic content blocks (a part's ``cache_control`` is kept)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else ():
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in (None, "text"):
            blocks.append(carried({"type": "text", "text": str(part.get("text") or "")}, part))
        elif kind == "image_url":
            blocks.append(carried(_image_block(part), part))
        else:
            raise InvalidRequest(
                f"content parts of type {kind!r} cannot be sent to an Anthropic upstream",
                param="messages",
            )
    return blocks


def _arguments(raw: Any) -> Any:
    if isinstance(raw, dict):
        return raw
    try:
        value = orjson.loads(raw or "{}")
    except (orjson.JSONDecodeError, TypeError):
        raise InvalidRequest(
            "tool call arguments must be a JSON object", param="messages"
        ) from None
    return value if isinstance(value, dict) else {"value": value}


def _append(out: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Anthropic wants user and assistant turns to alternate: merge same-role neighbours."""
    if not blocks:
        return
    if out and out[-1]["role"] == role:
        out[-1]["content"].extend(blocks)
    else:
        out.append({"role": role, "content": blocks})


def _tool_spec(tool: Any) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or not function.get("name"):
        raise InvalidRequest("each tool needs function.name", param="tools")
    spec = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object"},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    return carried(spec, tool)


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    out: dict[str, Any] | None = None
    if choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        out = {"type": "tool", "name": name} if isinstance(name, str) else None
    if parallel is False:
        out = {**(out or {"type": "auto"}), "disable_parallel_tool_use": True}
    return out


def _message_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    """One chat message's Anthropic blocks (a ``tool`` message is its ``tool_result``)."""
    role = message.get("role")
    content = message.get("content")
    if role in ("tool", "function"):
        result = {
            "type": "tool_result",
            "tool_use_id": message.get("tool_call_id") or message.get("name") or "",
            "content": _text_of(content),
        }
        for part in content if isinstance(content, list) else ():
            result = carried(result, part)  # the last marked part's mark
        return [result]
    if role not in ("system", "developer", "user", "assistant"):
        return []
    blocks = _blocks(content)
    calls = message.get("tool_calls") if role == "assistant" else None
    for call in calls or ():
        function = call.get("function") or {}
        use = {
            "type": "tool_use",
            "id": str(call.get("id") or ""),
            "name": str(function.get("name") or ""),
            "input": _arguments(function.get("arguments")),
        }
        blocks.append(carried(use, call))
    return blocks


def chat_to_messages(body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    """A Messages request for a chat body (system turns joined; tool results as user turns)."""
    if (body.get("n") or 1) != 1:
        raise InvalidRequest("an Anthropic upstream answers one choice (n=1)", param="n")
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in body.get("messages") or ():
        role = message.get("role")
        blocks = _message_blocks(message)
        if blocks and "cache_control" not in blocks[-1]:
            blocks[-1] = carried(blocks[-1], message)
        if role in ("system", "developer"):
            system.extend(blocks)
        elif role in ("user", "tool", "function"):
            _append(turns, "user", blocks)
        elif role == "assistant":
            _append(turns, "assistant", blocks)
    out: dict[str, Any] = {
        "model": upstream_model,
        "messages": turns,
        "max_tokens": body.get("max_completion_tokens")
        or body.get("max_tokens")
        or DEFAULT_MAX_TOKENS,
    }
    if system:
        out["system"] = system
    if body.get("tools"):
        if not isinstance(body["tools"], list):
            raise InvalidRequest("tools must be an array", param="tools")
        out["tools"] = [_tool_spec(t) for t in body["tools"]]
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None and out.get("tools"):
        out["tool_choice"] = choice
    stop = body.get("stop")
    if stop:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise InvalidRequest("stop must be a string or an array of strings", param="stop")
        out["stop_sequences"] = stops
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    if body.get("stream"):
        out["stream"] = True
    check_limit(count_breakpoints(out))
    return out


def count_breakpoints(request: dict[str, Any]) -> int:
    """How many ``cache_control`` breakpoints a Messages request carries: on tools, system
    blocks, content blocks and the blocks inside a ``tool_result`` (where Anthropic reads
    them)."""
    system = request.get("system")
    blocks: list[Any] = [
        *(request.get("tools") or ()),
        *(system if isinstance(system, list) else ()),
    ]
    for message in request.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else ():
            blocks.append(block)
            inner = block.get("content") if isinstance(block, dict) else None
            blocks.extend(inner if isinstance(inner, list) else ())
    return sum(1 for b in blocks if isinstance(b, dict) and "cache_control" in b)


# ---------------------------------------------------------------- Messages → chat


def _image_part(block: dict[str, Any]) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequest("an image block needs a source object", param="messages")
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type') or 'image/png'};base64,{source.get('data') or ''}"
    elif source.get("type") == "url":
        url = str(source.get("url") or "")
    else:
        raise InvalidRequest("an image block needs a base64 or url source", param="messages")
    return {"type": "image_url", "image_url": {"url": url}}


def _result_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(
            str(b.get("text") or "")
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )
    return content if isinstance(content, str) else ""


def _result(block: dict[str, Any], where: str) -> tuple[str, dict[str, Any] | None]:
    """A ``tool_result``'s text, and its mark: its own, or the last one inside it (the
    chat form has one text for it, so the mark goes on that)."""
    content = block.get("content")
    mark = valid_mark(block, where)
    for n, inner in enumerate(content if isinstance(content, list) else ()):
        if isinstance(inner, dict):
            mark = valid_mark(inner, f"{where}.content.{n}") or mark
    text = _result_text(content)
    return (f"Error: {text}" if block.get("is_error") else text), mark


def _user_turn(content: Any, index: int) -> list[dict[str, Any]]:
    """One Anthropic user turn as chat messages: tool results first (as ``tool`` messages,
    which must follow the assistant's calls), then the user's own content. Marked blocks
    stay parts (a ``tool`` message's content a marked text part)."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for b, block in enumerate(_block_list(content, index)):
        kind = block.get("type")
        where = f"messages.{index}.content.{b}"
        if kind == "text":
            text = _str(block, "text", index)
            parts.append(marked({"type": "text", "text": text}, valid_mark(block, where)))
        elif kind == "image":
            parts.append(marked(_image_part(block), valid_mark(block, where)))
        elif kind == "tool_result":
            text, mark = _result(block, where)
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": str(block.get("tool_use_id") or ""),
                    "content": text
                    if mark is None
                    else [marked({"type": "text", "text": text}, mark)],
                }
            )
        else:
            raise _unsupported(kind, index)
    if parts:
        out.append({"role": "user", "content": _joined(parts)})
    return out


def _joined(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Unmarked text parts as one string (as before marks were kept); else the parts."""
    if all(p["type"] == "text" and "cache_control" not in p for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _assistant_turn(content: Any, index: int) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for b, block in enumerate(_block_list(content, index)):
        kind = block.get("type")
        mark = valid_mark(block, f"messages.{index}.content.{b}")
        if kind == "text":
            texts.append(marked({"type": "text", "text": _str(block, "text", index)}, mark))
        elif kind == "tool_use":
            call = {
                "id": str(block.get("id") or ""),
                "type": "function",
                "function": {
                    "name": str(block.get("name") or ""),
                    "arguments": _dumps(block.get("input") or {}, index),
                },
            }
            calls.append(marked(call, mark))
        elif kind not in ("thinking", "redacted_thinking"):
            raise _unsupported(kind, index)
    message: dict[str, Any] = {"role": "assistant", "content": _joined(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _dumps(value: Any, index: int) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # an integer past 64 bits
        raise InvalidRequest(
            f"messages.{index}: a tool_use input orjson cannot encode",
            param=f"messages.{index}.content",
        ) from None


def _block_list(content: Any, index: int) -> list[dict[str, Any]]:
    if not isinstance(content, list) or not all(isinstance(b, dict) for b in content):
        raise InvalidRequest(
            f"messages.{index}.content must be a string or an array of content blocks",
            param=f"messages.{index}.content",
        )
    return content


def _str(block: dict[str, Any], key: str, index: int) -> str:
    value = block.get(key)
    if not isinstance(value, str):
        raise InvalidRequest(
            f"messages.{index}: a {block.get('type')} block needs a string {key!r}",
            param=f"messages.{index}.content",
        )
    return value


def _unsupported(kind: Any, index: int) -> InvalidRequest:
    return InvalidRequest(
        f"messages.{index}: content blocks of type {kind!r} are not supported",
        param=f"messages.{index}.content",
    )


def _system_content(system: Any) -> str | list[dict[str, Any]]:
    """The system prompt: one string, or its blocks as text parts when one is marked."""
    if isinstance(system, str):
        return system
    if isinstance(system, list) and all(isinstance(b, dict) for b in system):
        texts = [b.get("text") for b in system]
        if all(isinstance(t, str) for t in texts):
            marks = [valid_mark(b, f"system.{n}") for n, b in enumerate(system)]
            if any(marks):
                return [
                    marked({"type": "text", "text": str(t)}, m)
                    for t, m in zip(texts, marks, strict=True)
                ]
            return "\n\n".join(str(t) for t in texts)
    raise InvalidRequest("system must be a string or an array of text blocks", param="system")


def _chat_tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be an array", param="tools")
    out = []
    for number, tool in enumerate(tools):
        if (
            not isinstance(tool, dict)
            or not isinstance(tool.get("name"), str)
            or (tool.get("type") not in (None, "custom"))
        ):
            raise InvalidRequest(
                f"tools.{number}: only custom tools (name, input_schema) are supported",
                param=f"tools.{number}",
            )
        function = {
            "name": tool["name"],
            "parameters": tool.get("input_schema") or {"type": "object"},
        }
        if tool.get("description"):
            function["description"] = tool["description"]
        out.append(
            marked({"type": "function", "function": function}, valid_mark(tool, f"tools.{number}"))
        )
    return out


def _chat_tool_choice(choice: Any) -> tuple[Any, bool | None]:
    if not isinstance(choice, dict):
        raise InvalidRequest("tool_choice must be an object", param="tool_choice")
    parallel = False if choice.get("disable_parallel_tool_use") else None
    kind = choice.get("type")
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", parallel
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}, parallel
    raise InvalidRequest(
        "tool_choice.type must be auto, any, tool (with name) or none", param="tool_choice"
    )


def messages_to_chat(body: Any) -> dict[str, Any]:
    """The chat body for a Messages request (what the pipeline and every technique read)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_body")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise InvalidRequest("max_tokens: a positive integer is required", param="max_tokens")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("messages: a non-empty array is required", param="messages")
    check_limit(count_breakpoints(body))
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": _system_content(body["system"])})
    for index, turn in enumerate(raw):
        role = turn.get("role") if isinstance(turn, dict) else None
        if role == "user":
            messages.extend(_user_turn(turn.get("content"), index))
        elif role == "assistant":
            messages.append(_assistant_turn(turn.get("content"), index))
        else:
            raise InvalidRequest(
                f"messages.{index}.role must be 'user' or 'assistant'",
                param=f"messages.{index}.role",
            )
    chat: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens}
    if "model" in body:
        chat["model"] = body["model"]
    if body.get("tools"):
        chat["tools"] = _chat_tools(body["tools"])
        if body.get("tool_choice") is not None:
            chat["tool_choice"], parallel = _chat_tool_choice(body["tool_choice"])
            if parallel is not None:
                chat["parallel_tool_calls"] = parallel
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise InvalidRequest(
                "stop_sequences must be an array of strings", param="stop_sequences"
            )
        chat["stop"] = stops
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            chat[key] = body[key]
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    if body.get("stream") is not None:
        if not isinstance(body["stream"], bool):
            raise InvalidRequest("stream must be a boolean", param="stream")
        chat["stream"] = body["stream"]
        if body["stream"]:
            chat["stream_options"] = {"include_usage": True}
    return chat
