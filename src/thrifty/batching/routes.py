"""``/v1/files`` and ``/v1/batches`` on the gateway: thin handlers over :class:`BatchJobs`.

Mounted only when ``batching.enabled`` and ``batching.jobs.enabled``. Every handler
authenticates the caller (the same keys as the model endpoints) and renders any error
as OpenAI's ``{"error": ...}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from thrifty.batching.jobs import BatchJobs
from thrifty.batching.multipart import parse_form
from thrifty.errors import InvalidRequest, PayloadTooLarge, ThriftyError
from thrifty.runtime import Runtime
from thrifty.server.responses import JSONBytesResponse, error_response

Handler = Callable[[Request, str | None], Awaitable[Any]]


class JobRoutes:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.jobs = BatchJobs(runtime.config, runtime.registry, runtime.ledger)
        self._limit = runtime.config.batching.jobs.max_file_bytes

    def routes(self) -> list[Route]:
        return [
            Route("/v1/files", self._wrap(self.upload), methods=["POST"]),
            Route("/v1/files/{file_id}", self._wrap(self.file), methods=["GET"]),
            Route("/v1/files/{file_id}/content", self._wrap(self.content), methods=["GET"]),
            Route("/v1/batches", self._wrap(self.create), methods=["POST"]),
            Route("/v1/batches", self._wrap(self.list), methods=["GET"]),
            Route("/v1/batches/{batch_id}", self._wrap(self.retrieve), methods=["GET"]),
            Route("/v1/batches/{batch_id}/cancel", self._wrap(self.cancel), methods=["POST"]),
        ]

    def _wrap(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                header = request.headers.get("authorization", "")
                scheme, _, token = header.partition(" ")
                presented = token.strip() if scheme.lower() == "bearer" else header or None
                key_id = self.runtime.authenticate(presented).key_id
                result = await handler(request, key_id)
            except ThriftyError as exc:
                return error_response(exc)
            if isinstance(result, bytes):
                return Response(result, media_type="application/octet-stream")
            return JSONBytesResponse(result)

        return endpoint

    async def _json_body(self, request: Request) -> Any:
        try:
            return orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise InvalidRequest(
                "the request body is not valid JSON", code="invalid_json"
            ) from None

    async def upload(self, request: Request, key_id: str | None) -> Any:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._limit + 65_536:
            raise PayloadTooLarge(f"the file is larger than the limit of {self._limit} bytes")
        try:
            form = parse_form(request.headers.get("content-type", ""), await request.body())
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="file") from None
        if "file" not in form:
            raise InvalidRequest("'file' is required", param="file")
        purpose = form["purpose"].value.decode() if "purpose" in form else ""
        upload = form["file"]
        return await self.jobs.upload(key_id, upload.filename or "batch.jsonl", purpose,
                                      upload.value)  # fmt: skip

    async def file(self, request: Request, key_id: str | None) -> Any:
        return self.jobs.file(key_id, request.path_params["file_id"])

    async def content(self, request: Request, key_id: str | None) -> Any:
        return await self.jobs.file_content(key_id, request.path_params["file_id"])

    async def create(self, request: Request, key_id: str | None) -> Any:
        return await self.jobs.create(key_id, await self._json_body(request))

    async def retrieve(self, request: Request, key_id: str | None) -> Any:
        return await self.jobs.retrieve(key_id, request.path_params["batch_id"])

    async def cancel(self, request: Request, key_id: str | None) -> Any:
        return await self.jobs.cancel(key_id, request.path_params["batch_id"])

    async def list(self, request: Request, key_id: str | None) -> Any:
        raw = request.query_params.get("limit", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= 100:
            raise InvalidRequest("limit must be an integer from 1 to 100", param="limit")
        return self.jobs.list(key_id, int(raw), request.query_params.get("after"))


def job_routes(runtime: Runtime) -> list[Route]:
    """The routes, or none when batch jobs are off."""
    if not runtime.config.batching.jobs_on:
        return []
    return JobRoutes(runtime).routes()
