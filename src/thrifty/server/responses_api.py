"""``POST /v1/responses``: OpenAI's Responses API, served on the chat pipeline.

The request becomes a chat body (``responses_request.py``), runs through every technique,
and the chat reply is rendered as a ``response`` object: a ``message`` item with
``output_text`` and a ``function_call`` item per tool call, usage as ``input_tokens`` /
``output_tokens``. A stream is rendered as the documented events (``response.created``,
``response.output_item.added``, ``response.output_text.delta``, ...,
``response.completed``), each with its ``sequence_number``. Unless ``store`` is false,
the conversation is stored for ``previous_response_id`` under the caller's tenant.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response

from thrifty.cache.common import off_loop  # a store that blocks: on a worker thread
from thrifty.errors import InvalidRequest, StoreUnavailable, ThriftyError, to_openai_error
from thrifty.governance.keys.identity import Caller
from thrifty.pipeline.context import Context, Reply
from thrifty.server.dialect import tenant_of
from thrifty.server.responses import error_response
from thrifty.server.responses_request import chat_body
from thrifty.server.responses_store import MemoryResponseStore, ResponseStore
from thrifty.usage import Usage

log = logging.getLogger(__name__)

#: Longer ids were never issued (ours are ``resp_`` and 32 hex digits): a 404 at once.
MAX_ID_CHARS = 256


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def response_usage(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _call_item(call: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    function = call.get("function") or {}
    return {
        "id": "fc_" + str(call.get("id") or "").removeprefix("call_"),
        "type": "function_call",
        "status": status,
        "call_id": call.get("id"),
        "name": function.get("name"),
        "arguments": function.get("arguments") or "",
    }


class ResponsesExchange:
    """One ``/v1/responses`` request: its chat body, and its reply rendered back."""

    def __init__(
        self,
        body: dict[str, Any],
        history: list[dict[str, Any]],
        store: ResponseStore | None,
        tenant: str,
    ) -> None:
        self.body = body
        self.chat = chat_body(body, history)
        self.id = _id("resp")
        self.created_at = int(time.time())
        self._store = store
        self._tenant = tenant
        messages = self.chat["messages"]
        # what a follow-up inherits: not the instructions (OpenAI does not carry them over)
        self._history = messages[1:] if body.get("instructions") is not None else list(messages)
        self._history = orjson.loads(orjson.dumps(self._history))  # as sent, before any stage

    def _response(
        self,
        model: str,
        status: str,
        output: list[dict[str, Any]],
        usage: Usage | None,
        finish: str | None = None,
    ) -> dict[str, Any]:
        body = self.body
        incomplete = {"reason": "max_output_tokens"} if finish == "length" else None
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": "incomplete" if incomplete and status == "completed" else status,
            "error": None,
            "incomplete_details": incomplete,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": model,
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": response_usage(usage),
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }

    async def _remember(self, text: str | None, calls: list[dict[str, Any]]) -> None:
        """Store the conversation before the client sees the response end, so a follow-up
        sent at once finds it on any worker. A store that cannot be reached loses only
        this entry (logged): the answer is already paid for and is still served."""
        if self._store is None:
            return
        answer: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            answer["tool_calls"] = calls
        try:
            await off_loop(
                self._store.blocks, self._store.put, self._tenant, self.id, [*self._history, answer]
            )
        except StoreUnavailable as exc:
            log.warning("response not stored", extra={"response_id": self.id, "error": str(exc)})

    async def reply(self, ctx: Context, reply: Reply) -> dict[str, Any]:
        choice = ((reply.body or {}).get("choices") or [{}])[0]
        message = choice.get("message") or {}
        text = message.get("content")
        calls = [c for c in message.get("tool_calls") or () if isinstance(c, dict)]
        output = [_message_item(_id("msg"), text)] if text else []
        output += [_call_item(call) for call in calls]
        await self._remember(text, calls)
        return self._response(
            reply.model, "completed", output, reply.usage, choice.get("finish_reason")
        )

    async def events(self, ctx: Context, reply: Reply) -> AsyncIterator[bytes]:
        assert reply.chunks is not None
        stream = _EventStream(self, reply.model)
        try:
            async for chunk in reply.chunks:
                for event in stream.feed(chunk):
                    yield event
        except ThriftyError as exc:
            _, body, _ = to_openai_error(exc)
            yield stream.event("error", {**body["error"], "error": body["error"]})
            return
        await self._remember(stream.text, stream.tool_calls())
        for event in stream.finish(reply.usage):
            yield event


class _EventStream:
    """Chat chunks → Responses stream events, item by item."""

    def __init__(self, exchange: ResponsesExchange, model: str) -> None:
        self.exchange = exchange
        self.model = model
        self.seq = 0
        self.text: str | None = None
        self.text_id = _id("msg")
        self.calls: dict[int, dict[str, Any]] = {}
        self.output: list[dict[str, Any]] = []  # finished items
        self.open: str | int | None = None  # "text", or the tool call index
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.started = False

    def event(self, name: str, data: dict[str, Any]) -> bytes:
        payload = {"type": name, **data, "sequence_number": self.seq}
        self.seq += 1
        return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def _start(self) -> list[bytes]:
        self.started = True
        shell = self.exchange._response(self.model, "in_progress", [], None)
        return [
            self.event("response.created", {"response": shell}),
            self.event("response.in_progress", {"response": shell}),
        ]

    def _close(self) -> list[bytes]:
        out: list[bytes] = []
        index = len(self.output)
        if self.open == "text":
            text = self.text or ""
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            ids = {"item_id": self.text_id, "output_index": index, "content_index": 0}
            out.append(
                self.event("response.output_text.done", {**ids, "text": text, "logprobs": []})
            )
            out.append(self.event("response.content_part.done", {**ids, "part": part}))
            item = _message_item(self.text_id, text)
        elif isinstance(self.open, int):
            item = _call_item(self.calls[self.open])
            done = {"item_id": item["id"], "output_index": index, "arguments": item["arguments"]}
            out.append(self.event("response.function_call_arguments.done", done))
        else:
            return out
        out.append(self.event("response.output_item.done", {"output_index": index, "item": item}))
        self.output.append(item)
        self.open = None
        return out

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        out = [] if self.started else self._start()
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                out += self._text_delta(delta["content"])
            for call in delta.get("tool_calls") or ():
                out += self._call_delta(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def _text_delta(self, piece: str) -> list[bytes]:
        out: list[bytes] = []
        index = len(self.output)  # the open item's place: output holds the closed ones
        if self.open != "text":
            out += self._close()
            index = len(self.output)
            self.open, self.text = "text", ""
            item = _message_item(self.text_id, "", "in_progress")
            item["content"] = []
            out.append(
                self.event("response.output_item.added", {"output_index": index, "item": item})
            )
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out.append(
                self.event(
                    "response.content_part.added",
                    {
                        "item_id": self.text_id,
                        "output_index": index,
                        "content_index": 0,
                        "part": part,
                    },
                )
            )
        self.text = (self.text or "") + piece
        out.append(
            self.event(
                "response.output_text.delta",
                {
                    "item_id": self.text_id,
                    "output_index": index,
                    "content_index": 0,
                    "delta": piece,
                    "logprobs": [],
                },
            )
        )
        return out

    def _call_delta(self, call: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        number = call.get("index", 0)
        function = call.get("function") or {}
        if self.open != number:
            out += self._close()
            self.open = number
            self.calls[number] = {
                "id": call.get("id") or _id("call"),
                "type": "function",
                "function": {"name": function.get("name") or "", "arguments": ""},
            }
            item = _call_item(self.calls[number], "in_progress")
            out.append(
                self.event(
                    "response.output_item.added", {"output_index": len(self.output), "item": item}
                )
            )
        arguments = function.get("arguments") or ""
        if arguments:
            self.calls[number]["function"]["arguments"] += arguments
            item_id = _call_item(self.calls[number])["id"]
            out.append(
                self.event(
                    "response.function_call_arguments.delta",
                    {"item_id": item_id, "output_index": len(self.output), "delta": arguments},
                )
            )
        return out

    def tool_calls(self) -> list[dict[str, Any]]:
        return [self.calls[k] for k in sorted(self.calls)]

    def finish(self, usage: Usage | None) -> list[bytes]:
        out = [] if self.started else self._start()
        out += self._close()
        if self.usage is not None:
            usage = Usage.from_openai(self.usage) or usage
        final = self.exchange._response(
            self.model, "completed", self.output, usage, self.finish_reason
        )
        name = "response.completed" if final["status"] == "completed" else "response.incomplete"
        out.append(self.event(name, {"response": final}))
        return out


class ResponsesDialect:
    """The Responses API as a chat dialect (``server/dialect.py``)."""

    api = "responses"

    def __init__(self, store: ResponseStore | None = None) -> None:
        self.store: ResponseStore = store or MemoryResponseStore()

    async def prepare(self, body: Any, caller: Caller) -> ResponsesExchange:
        if not isinstance(body, dict):
            raise InvalidRequest("the request body must be a JSON object", code="invalid_body")
        if "input" not in body:
            raise InvalidRequest(
                "'input' is a required property", param="input", code="missing_required_parameter"
            )
        tenant = tenant_of(caller)
        history: list[dict[str, Any]] = []
        previous = body.get("previous_response_id")
        if previous is not None:
            found = None
            if isinstance(previous, str) and len(previous) <= MAX_ID_CHARS:
                found = await off_loop(self.store.blocks, self.store.get, tenant, previous)
            if found is None:
                raise InvalidRequest(
                    f"Previous response with id '{previous}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                    status=404,
                )
            history = found
        store = None if body.get("store") is False else self.store
        return ResponsesExchange(body, history, store, tenant)

    def error(self, exc: BaseException, request_id: str | None) -> Response:
        return error_response(exc, request_id)
