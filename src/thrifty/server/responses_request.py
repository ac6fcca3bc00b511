"""A Responses API request (``POST /v1/responses``) as the chat body the pipeline runs.

``input`` is a string or a list of items (messages with ``input_text`` / ``output_text`` /
``input_image`` parts, ``function_call`` and ``function_call_output`` items);
``instructions`` becomes the first system message (it is not carried over by
``previous_response_id``, as OpenAI documents); function ``tools``, ``tool_choice``,
``text.format``, ``max_output_tokens``, ``reasoning.effort`` and sampling map to their
chat names. What has no chat counterpart (built-in tools such as web search, file
inputs) is a 400 that names it.
"""

from __future__ import annotations

from typing import Any

from thrifty.errors import InvalidRequest

_ROLES = frozenset({"user", "assistant", "system", "developer"})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})


def _bad(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_value")


def _parts(content: Any, param: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(f"{param} must be a string or an array of content parts", param)
    parts: list[dict[str, Any]] = []
    for number, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        where = f"{param}[{number}]"
        if kind in _TEXT_PARTS:
            if not isinstance(part.get("text"), str):
                raise _bad(f"{where}.text must be a string", where)
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise _bad(f"{where}: content parts of type {kind!r} are not supported", where)
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def input_messages(raw: Any) -> list[dict[str, Any]]:
    """The chat messages of ``input`` (a string, or items)."""
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        raise _bad("'input' must be a string or a non-empty array of items", "input")
    messages: list[dict[str, Any]] = []
    for number, item in enumerate(raw):
        where = f"input[{number}]"
        kind = item.get("type", "message") if isinstance(item, dict) else None
        if kind == "message":
            role = item.get("role")
            if role not in _ROLES:
                raise _bad(f"{where}.role must be one of {sorted(_ROLES)}", f"{where}.role")
            messages.append({"role": role, "content": _parts(item.get("content"), where)})
        elif kind == "function_call":
            call = {
                "id": str(item.get("call_id") or ""),
                "type": "function",
                "function": {
                    "name": str(item.get("name") or ""),
                    "arguments": str(item.get("arguments") or ""),
                },
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _flatten(output, where)
            messages.append(
                {"role": "tool", "tool_call_id": str(item.get("call_id") or ""), "content": text}
            )
        elif kind == "reasoning":
            continue  # a reasoning model's summary: nothing a chat upstream reads back
        else:
            raise _bad(f"{where}: items of type {kind!r} are not supported", where)
    return messages


def _flatten(output: Any, where: str) -> str:
    content = _parts(output, f"{where}.output")
    if isinstance(content, str):
        return content
    raise _bad(f"{where}.output must be text", f"{where}.output")


def _tools(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise _bad("'tools' must be an array", "tools")
    tools = []
    for number, tool in enumerate(raw):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise _bad(
                f"tools[{number}]: only function tools are supported, not {kind!r}",
                f"tools[{number}]",
            )
        if not isinstance(tool.get("name"), str):
            raise _bad(f"tools[{number}].name must be a string", f"tools[{number}].name")
        function = {
            k: tool[k]
            for k in ("name", "description", "parameters", "strict")
            if tool.get(k) is not None
        }
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(raw: Any) -> Any:
    if raw in ("auto", "none", "required"):
        return raw
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("name"), str):
        return {"type": "function", "function": {"name": raw["name"]}}
    raise _bad("'tool_choice' must be auto, none, required or a function", "tool_choice")


def _response_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise _bad(f"text.format.type {fmt['type']!r} is not supported", "text.format")


def chat_body(body: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat body: instructions, the stored ``history``, then this request's input."""
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _bad("'instructions' must be a string", "instructions")
        messages.append({"role": "system", "content": instructions})
    messages += history + input_messages(body.get("input"))
    chat: dict[str, Any] = {"messages": messages}
    if "model" in body:
        chat["model"] = body["model"]
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if (response_format := _response_format(body.get("text"))) is not None:
        chat["response_format"] = response_format
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort"):
        chat["reasoning_effort"] = reasoning["effort"]
    for key in ("temperature", "top_p", "parallel_tool_calls", "user", "metadata"):
        if body.get(key) is not None:
            chat[key] = body[key]
    if body.get("stream") is not None:
        chat["stream"] = body["stream"]
        if body["stream"] is True:
            chat["stream_options"] = {"include_usage": True}
    return chat
