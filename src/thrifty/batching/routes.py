"""``/v1/files`` and ``/v1/batches`` on the gateway: thin handlers over :class:`BatchJobs`.

Mounted only when ``batching.enabled`` and ``batching.jobs.enabled``. Every handler
authenticates the caller (the same keys as the model endpoints) and renders any error
as OpenAI's ``{"error": ...}``. Jobs go through admission (``governance/jobs.py``).
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
from thrifty.governance.jobs import JobAdmission
from thrifty.governance.keys.identity import Caller
from thrifty.runtime import Runtime
from thrifty.server.responses import JSONBytesResponse, error_response
from thrifty.server.routes import caller_key

#: Room for the multipart framing and the ``purpose`` field around the file itself.
_FORM_OVERHEAD = 65_536

Handler = Callable[[Request, Caller], Awaitable[Any]]


class JobRoutes:
    """The handlers, sharing one :class:`BatchJobs` (and its job store)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        admission = JobAdmission(runtime.admission)
        self.jobs = BatchJobs(runtime.config, runtime.registry, runtime.ledger, admission=admission)
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
                caller = self.runtime.authenticate(caller_key(request))
                result = await handler(request, caller)
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

    async def _bounded_body(self, request: Request) -> bytes:
        """The upload's body, refused once past the file limit plus room for the form.

        Read in chunks: a chunked upload declares no length, and reading it whole first
        would hold any amount in memory before the limit is checked.
        """
        limit = self._limit + _FORM_OVERHEAD
        declared = request.headers.get("content-length", "")
        too_large = PayloadTooLarge(f"the file is larger than the limit of {self._limit} bytes")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def upload(self, request: Request, caller: Caller) -> Any:
        body = await self._bounded_body(request)
        try:
            form = parse_form(request.headers.get("content-type", ""), body)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="file") from None
        if "file" not in form:
            raise InvalidRequest("'file' is required", param="file")
        try:
            purpose = form["purpose"].value.decode() if "purpose" in form else ""
        except UnicodeDecodeError:
            raise InvalidRequest("purpose is not valid UTF-8", param="purpose") from None
        upload = form["file"]
        return await self.jobs.upload(caller.key_id, upload.filename or "batch.jsonl", purpose,
                                      upload.value, caller)  # fmt: skip

    async def file(self, request: Request, caller: Caller) -> Any:
        return await self.jobs.file(caller.key_id, request.path_params["file_id"])

    async def content(self, request: Request, caller: Caller) -> Any:
        return await self.jobs.file_content(caller.key_id, request.path_params["file_id"])

    async def create(self, request: Request, caller: Caller) -> Any:
        return await self.jobs.create(caller.key_id, await self._json_body(request), caller)

    async def retrieve(self, request: Request, caller: Caller) -> Any:
        return await self.jobs.retrieve(caller.key_id, request.path_params["batch_id"])

    async def cancel(self, request: Request, caller: Caller) -> Any:
        return await self.jobs.cancel(caller.key_id, request.path_params["batch_id"])

    async def list(self, request: Request, caller: Caller) -> Any:
        raw = request.query_params.get("limit", "20")
        # isascii: str.isdigit() is also true for digits int() refuses, such as "²"
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 100:
            raise InvalidRequest("limit must be an integer from 1 to 100", param="limit")
        return await self.jobs.list(caller.key_id, int(raw), request.query_params.get("after"))


def job_routes(runtime: Runtime) -> list[Route]:
    """The routes, or none when batch jobs are off."""
    if not runtime.config.batching.jobs_on:
        return []
    return JobRoutes(runtime).routes()
