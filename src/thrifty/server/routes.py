"""Thin HTTP handlers: read and check the body, run the pipeline, render the reply."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from thrifty.errors import InvalidRequest, PayloadTooLarge, ThriftyError
from thrifty.pipeline.context import CHAT, EMBEDDINGS, Context, new_request_id
from thrifty.pipeline.requests import check_chat_body, check_embeddings_body
from thrifty.runtime import Runtime
from thrifty.server.responses import JSONBytesResponse, SSEResponse, error_response

_TAGS_HEADER = "x-thrifty-tags"
_CONTROL_PREFIX = "x-thrifty-"


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


def parse_tags(header: str | None, metadata: Any) -> dict[str, str]:
    """Tags from ``x-thrifty-tags: team=search,env=prod`` and the body's ``metadata``."""
    tags: dict[str, str] = {}
    if isinstance(metadata, dict):
        tags.update(
            {str(k): str(v) for k, v in metadata.items() if isinstance(v, str | int | float)}
        )
    if header:
        for item in header.split(","):
            key, sep, value = item.partition("=")
            if key.strip():
                tags[key.strip()] = value.strip() if sep else "true"
    return tags


def _controls(request: Request) -> dict[str, str]:
    return {
        k[len(_CONTROL_PREFIX) :]: v
        for k, v in request.headers.items()
        if k.startswith(_CONTROL_PREFIX) and k != _TAGS_HEADER
    }


class Handlers:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def _run(self, request: Request, endpoint: str) -> Response:
        request_id = new_request_id()
        try:
            runtime = self.runtime
            key_id = runtime.authenticate(_bearer(request))
            body = await _read_json(request, runtime.config.server.max_body_bytes)
            default = runtime.config.default_model
            if endpoint == CHAT:
                model = check_chat_body(body, default)
            else:
                model = check_embeddings_body(body, default)
            runtime.registry.get(model)  # unknown model → 404 before any work
            body["model"] = model
            ctx = Context(
                endpoint=endpoint,
                body=body,
                requested_model=model,
                model=model,
                stream=bool(body.get("stream")) and endpoint == CHAT,
                key_id=key_id,
                tags=parse_tags(request.headers.get(_TAGS_HEADER), body.get("metadata")),
                controls=_controls(request),
                request_id=request_id,
            )
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
        return JSONBytesResponse({"status": "ok", "ledger_pending": self.runtime.ledger.pending})
