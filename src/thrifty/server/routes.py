"""Thin HTTP handlers: read and check the body, run the pipeline, render the reply."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from thrifty.errors import InvalidRequest, PayloadTooLarge, ThriftyError
from thrifty.pipeline.context import CHAT, EMBEDDINGS, new_request_id
from thrifty.runtime import Runtime
from thrifty.server.responses import JSONBytesResponse, SSEResponse, error_response


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else header.strip()
    return request.headers.get("api-key") or request.headers.get("x-api-key")


async def _read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is larger than the gateway's limit of {limit} bytes")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise PayloadTooLarge(
                f"request body is larger than the gateway's limit of {limit} bytes"
            )
    if not body:
        raise InvalidRequest("the request body is empty; send a JSON object", code="invalid_body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"the request body is not valid JSON: {exc}", code="invalid_json"
        ) from None


class Handlers:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def _run(self, request: Request, endpoint: str) -> Response:
        request_id = new_request_id()
        try:
            runtime = self.runtime
            key_id = runtime.authenticate(_bearer(request))
            body = await _read_json(request, runtime.config.server.max_body_bytes)
            headers = {k: v for k, v in request.headers.items() if k.startswith("x-thrifty-")}
            ctx = runtime.new_context(endpoint, body, headers, key_id, request_id)
            reply = await runtime.pipeline.run(ctx)
        except ThriftyError as exc:
            return error_response(exc, request_id)
        headers = {
            "x-thrifty-request-id": request_id,
            "x-thrifty-model": reply.model,
            **reply.headers,
        }
        if reply.chunks is not None:
            return SSEResponse(reply.chunks, headers)
        return JSONBytesResponse(reply.body, headers=headers)

    async def chat_completions(self, request: Request) -> Response:
        return await self._run(request, CHAT)

    async def embeddings(self, request: Request) -> Response:
        return await self._run(request, EMBEDDINGS)

    async def models(self, request: Request) -> Response:
        try:
            self.runtime.authenticate(_bearer(request))
        except ThriftyError as exc:
            return error_response(exc)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "thrifty"}
            for name in self.runtime.registry.names
        ]
        return JSONBytesResponse({"object": "list", "data": data})

    async def health(self, request: Request) -> Response:
        pending = getattr(self.runtime.ledger, "pending", 0)
        return JSONBytesResponse({"status": "ok", "ledger_pending": pending})
