"""The test upstream's Files and Batch APIs, in OpenAI's shapes, quick and deterministic.

``POST /v1/files`` (multipart ``file`` + ``purpose``), ``GET /v1/files/{id}``,
``GET /v1/files/{id}/content``; ``POST /v1/batches``, ``GET /v1/batches/{id}``,
``GET /v1/batches``, ``POST /v1/batches/{id}/cancel``.

A batch is worked at creation: each input line's body is answered exactly as
``/v1/chat/completions`` would answer it (no latency, no faults), into an output file
and, for failed lines, an error file. Its status then moves one step per retrieve:
``validating`` (the create reply), ``in_progress`` for ``batch_polls`` retrieves, then
``completed``; so a client's polling loop is exercised, in a fixed number of steps.
Everything lives in memory until the server stops.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from thrifty.batching.multipart import parse_form
from thrifty.upstream.faults import error_response

Complete = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]
_ENDPOINTS = ("/v1/chat/completions",)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def _bad(message: str, param: str | None = None) -> Response:
    return error_response(400, message, "invalid_request_error", param=param)


def _not_found(what: str, id_: str) -> Response:
    return error_response(404, f"No such {what}: '{id_}'", "invalid_request_error")


class UpstreamBatches:
    """Files and batches, answered by ``complete(body) -> (status, response body)``."""

    def __init__(self, complete: Complete, polls: int = 1) -> None:
        self._complete = complete
        self._polls = polls
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._retrieves: dict[str, int] = {}
        self._results: dict[str, tuple[bytes, bytes, int, int]] = {}

    def routes(self) -> list[Route]:
        return [
            Route("/v1/files", self.upload, methods=["POST"]),
            Route("/v1/files/{file_id}", self.get_file, methods=["GET"]),
            Route("/v1/files/{file_id}/content", self.file_content, methods=["GET"]),
            Route("/v1/batches", self.create, methods=["POST"]),
            Route("/v1/batches", self.list, methods=["GET"]),
            Route("/v1/batches/{batch_id}", self.retrieve, methods=["GET"]),
            Route("/v1/batches/{batch_id}/cancel", self.cancel, methods=["POST"]),
        ]

    def _store(self, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        file_id = "file-" + secrets.token_hex(12)
        record = {"id": file_id, "object": "file", "bytes": len(content),
                  "created_at": int(time.time()), "filename": filename, "purpose": purpose,
                  "status": "processed", "status_details": None}  # fmt: skip
        self.files[file_id] = record
        self.contents[file_id] = content
        return record

    async def upload(self, request: Request) -> Response:
        try:
            form = parse_form(request.headers.get("content-type", ""), await request.body())
        except ValueError as exc:
            return _bad(str(exc))
        if "file" not in form or "purpose" not in form:
            return _bad("'file' and 'purpose' are required", "file")
        upload = form["file"]
        purpose = form["purpose"].value.decode()
        return _json(self._store(upload.filename or "upload", purpose, upload.value))

    async def get_file(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        record = self.files.get(file_id)
        return _json(record) if record else _not_found("file", file_id)

    async def file_content(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if file_id not in self.contents:
            return _not_found("file", file_id)
        return Response(self.contents[file_id], media_type="application/octet-stream")

    async def create(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _bad("We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return _bad("The request body must be a JSON object.")
        file_id = body.get("input_file_id")
        if file_id not in self.contents:
            return _bad(f"input_file_id {file_id!r} does not exist", "input_file_id")
        if body.get("endpoint") not in _ENDPOINTS:
            return _bad(f"endpoint must be one of {list(_ENDPOINTS)}", "endpoint")
        if body.get("completion_window") != "24h":
            return _bad("completion_window must be '24h'", "completion_window")
        batch_id = "batch_" + secrets.token_hex(12)
        now = int(time.time())
        batch = {"id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                 "input_file_id": file_id, "completion_window": "24h", "status": "validating",
                 "output_file_id": None, "error_file_id": None, "created_at": now,
                 "in_progress_at": None, "expires_at": now + 86_400, "finalizing_at": None,
                 "completed_at": None, "failed_at": None, "expired_at": None,
                 "cancelling_at": None, "cancelled_at": None,
                 "request_counts": {"total": 0, "completed": 0, "failed": 0},
                 "metadata": body.get("metadata")}  # fmt: skip
        self.batches[batch_id] = batch
        self._retrieves[batch_id] = 0
        self._results[batch_id] = self._work(batch_id, self.contents[file_id])
        return _json(batch)

    def _work(self, batch_id: str, content: bytes) -> tuple[bytes, bytes, int, int]:
        """Answer every line now: (output JSONL, error JSONL, completed, failed)."""
        out, err = [], []
        for number, line in enumerate(content.splitlines(), 1):
            if not line.strip():
                continue
            req_id = f"batch_req_{secrets.token_hex(12)}"
            try:
                item = orjson.loads(line)
                custom_id, body = item["custom_id"], item["body"]
                if not isinstance(body, dict):
                    raise TypeError("body must be an object")
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                error = {"code": "invalid_line", "message": f"line {number}: {exc}"}
                err.append({"id": req_id, "custom_id": None, "response": None, "error": error})
                continue
            status, payload = self._complete(body)
            response = {"status_code": status, "request_id": req_id, "body": payload}
            record = {"id": req_id, "custom_id": custom_id, "response": response, "error": None}
            (out if status == 200 else err).append(record)
        dump = b"".join(orjson.dumps(r) + b"\n" for r in out)
        dump_err = b"".join(orjson.dumps(r) + b"\n" for r in err)
        return dump, dump_err, len(out), len(err)

    def _advance(self, batch: dict[str, Any]) -> None:
        batch_id = batch["id"]
        if batch["status"] in ("completed", "cancelled", "failed"):
            return
        self._retrieves[batch_id] += 1
        now = int(time.time())
        if self._retrieves[batch_id] <= self._polls:
            batch["status"] = "in_progress"
            batch["in_progress_at"] = batch["in_progress_at"] or now
            return
        output, errors, completed, failed = self._results[batch_id]
        if output:
            batch["output_file_id"] = self._store("batch_output.jsonl", "batch_output", output)[
                "id"
            ]
        if errors:
            batch["error_file_id"] = self._store("batch_errors.jsonl", "batch_output", errors)["id"]
        batch["request_counts"] = {
            "total": completed + failed,
            "completed": completed,
            "failed": failed,
        }
        batch.update(status="completed", finalizing_at=now, completed_at=now)

    async def retrieve(self, request: Request) -> Response:
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None:
            return _not_found("batch", request.path_params["batch_id"])
        self._advance(batch)
        return _json(batch)

    async def list(self, request: Request) -> Response:
        data = sorted(self.batches.values(), key=lambda b: b["created_at"], reverse=True)
        return _json({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                      "last_id": data[-1]["id"] if data else None,
                      "has_more": False})  # fmt: skip

    async def cancel(self, request: Request) -> Response:
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None:
            return _not_found("batch", request.path_params["batch_id"])
        if batch["status"] not in ("completed", "failed"):
            now = int(time.time())
            batch.update(status="cancelled", cancelling_at=now, cancelled_at=now)
        return _json(batch)
