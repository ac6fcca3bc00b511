"""``POST /v1/completions``: OpenAI's legacy text completions, served on the chat pipeline.

The ``prompt`` becomes one user message; the answer comes back as ``text_completion``
choices (``echo`` puts the prompt in front). One prompt per request: a list of several
prompts, token-id prompts, ``suffix``, ``best_of`` > 1 and ``logprobs`` have no chat
counterpart and are refused with a 400 naming the parameter.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response

from thrifty.errors import InvalidRequest
from thrifty.governance.keys.identity import Caller
from thrifty.pipeline.context import Context, Reply
from thrifty.server.responses import error_response, sse_events

_REFUSED = ("suffix", "logprobs")


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise InvalidRequest(
            "'prompt' must be one string (a list of prompts or of token ids is not supported)",
            param="prompt",
            code="invalid_value",
        )
    return prompt


class CompletionsExchange:
    def __init__(self, body: dict[str, Any]) -> None:
        for name in _REFUSED:
            if body.get(name) not in (None, "", 0):
                raise InvalidRequest(f"'{name}' is not supported", param=name, code="unsupported")
        if (body.get("best_of") or 1) != 1:
            raise InvalidRequest(
                "'best_of' other than 1 is not supported", param="best_of", code="unsupported"
            )
        self.prompt = _prompt(body)
        self.echo = body.get("echo") is True
        chat = {k: v for k, v in body.items() if k not in ("prompt", "echo", "best_of", *_REFUSED)}
        chat["messages"] = [{"role": "user", "content": self.prompt}]
        self.chat = chat
        self.id = "cmpl-" + secrets.token_hex(12)
        self.created = int(time.time())

    def _completion(self, model: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": model,
            "choices": choices,
        }

    async def reply(self, ctx: Context, reply: Reply) -> dict[str, Any]:
        choices = []
        for choice in (reply.body or {}).get("choices") or ():
            text = (choice.get("message") or {}).get("content") or ""
            choices.append(
                {
                    "text": (self.prompt if self.echo else "") + text,
                    "index": choice.get("index", 0),
                    "logprobs": None,
                    "finish_reason": choice.get("finish_reason"),
                }
            )
        out = self._completion(reply.model, choices)
        if reply.usage is not None:
            out["usage"] = reply.usage.to_openai()
        return out

    def events(self, ctx: Context, reply: Reply) -> AsyncIterator[bytes]:
        assert reply.chunks is not None
        return sse_events(self._chunks(reply.chunks, reply.model))

    async def _chunks(
        self, chunks: AsyncIterator[dict[str, Any]], model: str
    ) -> AsyncIterator[dict[str, Any]]:
        echoed: set[int] = set()
        async for chunk in chunks:
            choices = []
            for choice in chunk.get("choices") or ():
                index = choice.get("index", 0)
                text = (choice.get("delta") or {}).get("content") or ""
                if self.echo and index not in echoed:
                    echoed.add(index)
                    text = self.prompt + text
                if text or choice.get("finish_reason"):
                    choices.append(
                        {
                            "text": text,
                            "index": index,
                            "logprobs": None,
                            "finish_reason": choice.get("finish_reason"),
                        }
                    )
            out = self._completion(model, choices)
            if chunk.get("usage"):
                out["usage"] = chunk["usage"]
            if choices or chunk.get("usage"):
                yield out


class CompletionsDialect:
    """Legacy completions as a chat dialect (``server/dialect.py``)."""

    api = "completions"

    async def prepare(self, body: Any, caller: Caller) -> CompletionsExchange:
        if not isinstance(body, dict):
            raise InvalidRequest("the request body must be a JSON object", code="invalid_body")
        return CompletionsExchange(body)

    def error(self, exc: BaseException, request_id: str | None) -> Response:
        return error_response(exc, request_id)
