"""Rebuild a complete chat.completion from the chunks of a stream (to cache it)."""

from __future__ import annotations

from typing import Any


class ChunkAssembler:
    """Feed it every chunk of a stream; ``body()`` is the equivalent non-streamed answer,
    or None if a choice never finished (a cut stream must not be cached)."""

    def __init__(self) -> None:
        self._head: dict[str, Any] = {}
        self._choices: dict[int, dict[str, Any]] = {}
        self._usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        if not self._head:
            self._head = {k: chunk.get(k) for k in ("id", "created", "model", "system_fingerprint")}
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            state = self._choices.setdefault(
                choice.get("index", 0),
                {
                    "content": [],
                    "tool_calls": {},
                    "logprobs": [],
                    "finish_reason": None,
                    "role": "assistant",
                },
            )
            delta = choice.get("delta") or {}
            if delta.get("content"):
                state["content"].append(delta["content"])
            for call in delta.get("tool_calls") or ():
                slot = state["tool_calls"].setdefault(
                    call.get("index", 0),
                    {"id": None, "type": "function", "name": [], "arguments": []},
                )
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["name"].append(function.get("name") or "")
                slot["arguments"].append(function.get("arguments") or "")
            logprobs = choice.get("logprobs") or {}
            state["logprobs"].extend(logprobs.get("content") or ())
            if choice.get("finish_reason"):
                state["finish_reason"] = choice["finish_reason"]

    def body(self) -> dict[str, Any] | None:
        if not self._choices or any(c["finish_reason"] is None for c in self._choices.values()):
            return None
        choices = []
        for index in sorted(self._choices):
            state = self._choices[index]
            message: dict[str, Any] = {
                "role": "assistant",
                "content": "".join(state["content"]) or None,
            }
            if state["tool_calls"]:
                message["tool_calls"] = [
                    {
                        "id": slot["id"],
                        "type": "function",
                        "function": {
                            "name": "".join(slot["name"]),
                            "arguments": "".join(slot["arguments"]),
                        },
                    }
                    for _, slot in sorted(state["tool_calls"].items())
                ]
            choices.append({
                "index": index, "message": message, "finish_reason": state["finish_reason"],
                "logprobs": {"content": state["logprobs"]} if state["logprobs"] else None,
            })  # fmt: skip
        body = {**self._head, "object": "chat.completion", "choices": choices}
        if self._usage:
            body["usage"] = self._usage
        return body
