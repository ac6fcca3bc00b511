"""The handlers of ``/v1/files`` and ``/v1/batches``: thin HTTP over :class:`BatchJobs`.

The server mounts them only when ``batching.enabled`` and ``batching.jobs.enabled``. Every
handler authenticates the caller first (the same keys as the model endpoints) and returns
JSON-able data, or bytes for a file's content; a :class:`ThriftyError` it raises is the
client's OpenAI-style error. Jobs go through admission (``governance/jobs.py``), which
the :class:`BatchJobs` given holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

from thrifty.batching.jobs import BatchJobs
from thrifty.batching.multipart import parse_form
from thrifty.errors import InvalidRequest, PayloadTooLarge
from thrifty.governance.keys.identity import Caller
from thrifty.governance.keys.presented import presented_key
from thrifty.pipeline.requests import loads_body

#: Room for the multipart framing and the ``purpose`` field around the file itself.
_FORM_OVERHEAD = 65_536


class JobHandlers:
    """The handlers, sharing one :class:`BatchJobs` (and its job store)."""

    def __init__(
        self,
        jobs: BatchJobs,
        authenticate: Callable[[str | None], Awaitable[Caller]],
        max_file_bytes: int,
    ) -> None:
        self.jobs = jobs
        self._authenticate = authenticate
        self._limit = max_file_bytes

    async def _caller(self, request: Request) -> Caller:
        return await self._authenticate(presented_key(request))

    async def _json_body(self, request: Request) -> Any:
        return loads_body(await request.body())

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

    async def upload(self, request: Request) -> Any:
        caller = await self._caller(request)
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

    async def file(self, request: Request) -> Any:
        caller = await self._caller(request)
        return await self.jobs.file(caller.key_id, request.path_params["file_id"])

    async def content(self, request: Request) -> Any:
        caller = await self._caller(request)
        return await self.jobs.file_content(caller.key_id, request.path_params["file_id"])

    async def create(self, request: Request) -> Any:
        caller = await self._caller(request)
        return await self.jobs.create(caller.key_id, await self._json_body(request), caller)

    async def retrieve(self, request: Request) -> Any:
        caller = await self._caller(request)
        return await self.jobs.retrieve(caller.key_id, request.path_params["batch_id"])

    async def cancel(self, request: Request) -> Any:
        caller = await self._caller(request)
        return await self.jobs.cancel(caller.key_id, request.path_params["batch_id"])

    async def list(self, request: Request) -> Any:
        caller = await self._caller(request)
        raw = request.query_params.get("limit", "20")
        # isascii: str.isdigit() is also true for digits int() refuses, such as "²"
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 100:
            raise InvalidRequest("limit must be an integer from 1 to 100", param="limit")
        return await self.jobs.list(caller.key_id, int(raw), request.query_params.get("after"))
