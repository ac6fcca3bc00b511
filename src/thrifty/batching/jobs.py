"""Provider batch jobs (typically 50% off): upload, create, poll, and book each result.

The same service backs the gateway's ``/v1/files`` + ``/v1/batches`` and ``thrifty
batch``. An input file is checked line by line and its public model names are mapped to
the provider's before upload (one provider per file, as providers require). When a job
is first seen completed, every result line becomes a ledger row priced at the model's
batch rates (``pricing.cost(..., batch=True)``), its baseline the same tokens at the
normal price; ``request_id`` is derived from the job and ``custom_id``, so booking twice
writes nothing twice. With an :class:`~thrifty.governance.jobs.JobAdmission`, a job is
admitted whole at create (allowed models, rate limits, its worst case reserved against
the caller's budgets) and the reservation is settled when its results are booked.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import orjson

from thrifty.batching.config import BatchingConfig
from thrifty.batching.provider_api import ProviderBatchAPI
from thrifty.batching.stores.base import JobStore
from thrifty.batching.stores.sqlite import SqliteJobStore
from thrifty.errors import InvalidRequest, PayloadTooLarge, ThriftyError
from thrifty.governance.config import GovernanceConfig
from thrifty.governance.jobs import JobAdmission, estimate_lines, window_s
from thrifty.governance.keys.identity import Caller
from thrifty.ledger.record import AttemptRecord, RequestRecord
from thrifty.ledger.sink import LedgerSink
from thrifty.pipeline.context import CHAT
from thrifty.pricing import cost as price
from thrifty.providers.cache_marks import strip_cache_control
from thrifty.providers.config import ProviderConfig
from thrifty.registry import ModelRegistry
from thrifty.stores.sqlite import off_loop
from thrifty.usage import Usage

log = logging.getLogger(__name__)
T = TypeVar("T")

ENDPOINT = "/v1/chat/completions"
#: A completion window: whole hours (OpenAI accepts "24h"); four digits keep it a number.
_WINDOW = re.compile(r"\d{1,4}h")
_DONE = frozenset({"completed", "cancelled", "expired", "failed"})


def _object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else empty: result lines come from elsewhere."""
    return value if isinstance(value, dict) else {}


def _not_found(what: str, id_: str) -> InvalidRequest:
    return InvalidRequest(f"No such {what}: '{id_}'", status=404, code="not_found")


class JobSettings(Protocol):
    """The config sections batch jobs read; the whole config (``ThriftyConfig``) has them."""

    @property
    def batching(self) -> BatchingConfig: ...

    @property
    def providers(self) -> Mapping[str, ProviderConfig]: ...

    @property
    def governance(self) -> GovernanceConfig: ...


class BatchJobs:
    """Files and batch jobs for one config; ``key_id`` None (auth off, CLI) sees all."""

    def __init__(
        self,
        config: JobSettings,
        registry: ModelRegistry,
        ledger: LedgerSink,
        store: JobStore | None = None,
        admission: JobAdmission | None = None,
    ) -> None:
        self._config = config
        self._registry = registry
        self._ledger = ledger
        self.store = store or SqliteJobStore(config.batching.jobs.path)
        self._admission = admission
        self._booking = asyncio.Lock()

    async def _db(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A job-store call in a worker thread (the CLI may be writing the file)."""
        return await off_loop("batch job store", call, *args, **kwargs)

    def _api(self, provider: str) -> ProviderBatchAPI:
        return ProviderBatchAPI(provider, self._config.providers[provider])

    # ------------------------------------------------------------------ files

    def _check_lines(
        self, content: bytes
    ) -> tuple[str, bytes, dict[str, tuple[str, dict[str, Any]]]]:
        """(provider, content with upstream model names, custom_id -> (public model, body))."""
        providers: set[str] = set()
        models: dict[str, tuple[str, dict[str, Any]]] = {}
        out = []
        for number, raw in enumerate(content.splitlines(), 1):
            if not raw.strip():
                continue
            where = f"line {number}"
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise InvalidRequest(f"{where} is not valid JSON", param="file") from None
            if not isinstance(line, dict) or not isinstance(line.get("body"), dict):
                raise InvalidRequest(f"{where}: expected an object with a body", param="file")
            custom_id = line.get("custom_id")
            if not isinstance(custom_id, str) or not custom_id or custom_id in models:
                raise InvalidRequest(f"{where}: custom_id must be a unique string", param="file")
            if line.get("url") != ENDPOINT or line.get("method", "POST") != "POST":
                raise InvalidRequest(f"{where}: only POST {ENDPOINT} is supported", param="file")
            name = line["body"].get("model")
            if not isinstance(name, str):
                raise InvalidRequest(f"{where}: body.model must be a string", param="file")
            try:
                deployment = self._registry.get(name).deployments[0]
            except ThriftyError:
                raise InvalidRequest(f"{where}: unknown model {name!r}", param="file") from None
            providers.add(deployment.provider)
            models[custom_id] = (name, line["body"])
            # provider batch APIs are OpenAI's, which refuse cache_control (a caller's
            # Anthropic marks: providers/cache_marks.py); the caller's file is not changed
            body = strip_cache_control({**line["body"], "model": deployment.upstream_model})
            out.append(orjson.dumps({**line, "method": "POST", "body": body}))
        if not models:
            raise InvalidRequest("the file has no requests", param="file")
        if len(providers) > 1:
            raise InvalidRequest(
                f"one batch file must use models of one provider, got {sorted(providers)}",
                param="file",
            )
        return providers.pop(), b"\n".join(out) + b"\n", models

    async def upload(
        self,
        key_id: str | None,
        filename: str,
        purpose: str,
        content: bytes,
        caller: Caller | None = None,
    ) -> dict[str, Any]:
        if purpose != "batch":
            raise InvalidRequest("only purpose 'batch' is supported", param="purpose")
        limit = self._config.batching.jobs.max_file_bytes
        if len(content) > limit:
            raise PayloadTooLarge(f"the file is larger than the limit of {limit} bytes")
        provider, rewritten, lines = self._check_lines(content)
        models = {custom_id: name for custom_id, (name, _) in lines.items()}
        if self._admission is not None and caller is not None:
            self._admission.check_models(caller, models)
        upstream = await self._api(provider).upload(filename, rewritten, purpose)
        file_id = "file-thr" + secrets.token_hex(10)
        await self._db(self.store.add_file, file_id, key_id=key_id, provider=provider,
                            upstream_id=str(upstream["id"]), filename=filename, purpose=purpose,
                            size=len(content), models=models)  # fmt: skip
        if self._admission is not None:
            default = self._config.governance.default_max_output_tokens
            await self._db(self.store.add_lines, file_id,
                           estimate_lines(lines, self._registry, default))  # fmt: skip
        return await self.file(key_id, file_id)

    def _owned(self, row: dict[str, Any] | None, key_id: str | None, what: str, id_: str) -> Any:
        if row is None or (key_id is not None and row["key_id"] not in (None, key_id)):
            raise _not_found(what, id_)
        return row

    async def file(self, key_id: str | None, file_id: str) -> dict[str, Any]:
        row = self._owned(await self._db(self.store.file, file_id), key_id, "file", file_id)
        return {"id": row["id"], "object": "file", "bytes": row["bytes"],
                "created_at": row["created_at"], "filename": row["filename"],
                "purpose": row["purpose"], "status": "processed",
                "status_details": None}  # fmt: skip

    async def file_content(self, key_id: str | None, file_id: str) -> bytes:
        row = self._owned(await self._db(self.store.file, file_id), key_id, "file", file_id)
        return await self._api(row["provider"]).content(row["upstream_id"])

    # ------------------------------------------------------------------ batches

    async def create(
        self, key_id: str | None, body: Any, caller: Caller | None = None
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidRequest("the request body must be a JSON object", code="invalid_body")
        file_id = body.get("input_file_id")
        if not isinstance(file_id, str):
            raise InvalidRequest("input_file_id is required", param="input_file_id")
        source = self._owned(await self._db(self.store.file, file_id), key_id, "file", file_id)
        if body.get("endpoint") != ENDPOINT:
            raise InvalidRequest(f"endpoint must be {ENDPOINT!r}", param="endpoint")
        window = body.get("completion_window", "24h")
        if not (isinstance(window, str) and _WINDOW.fullmatch(window)):
            raise InvalidRequest(
                "completion_window must be a number of hours such as '24h'",
                param="completion_window",
            )
        request = {"input_file_id": source["upstream_id"], "endpoint": ENDPOINT,
                   "completion_window": window}  # fmt: skip
        if body.get("metadata") is not None:
            request["metadata"] = body["metadata"]
        held = None
        if self._admission is not None and caller is not None:
            lines = await self._db(self.store.lines, file_id)
            if lines is None:
                raise InvalidRequest(
                    f"file {file_id!r} was uploaded before budgets applied to batch jobs: "
                    "upload it again",
                    param="input_file_id",
                )
            ttl = window_s(window) + self._config.governance.reservation_ttl_s
            held = await self._admission.hold(caller, lines, ttl)
        try:
            upstream = await self._api(source["provider"]).post("batches", request)
        except BaseException:
            if held is not None:
                assert self._admission is not None
                await self._admission.release(held)
            raise
        batch_id = "batch_thr" + secrets.token_hex(10)
        await self._db(self.store.add_batch, batch_id, key_id=key_id, provider=source["provider"],
                             upstream_id=str(upstream["id"]), input_file_id=file_id,
                             last=upstream)  # fmt: skip
        if held is not None:
            await self._db(self.store.add_hold, batch_id, held)
        return await self._render(await self._db(self.store.batch, batch_id) or {}, upstream)

    async def retrieve(self, key_id: str | None, batch_id: str) -> dict[str, Any]:
        row = self._owned(await self._db(self.store.batch, batch_id), key_id, "batch", batch_id)
        api = self._api(row["provider"])
        upstream = await api.get(f"batches/{row['upstream_id']}")
        return await self._observe(row, upstream, api)

    async def cancel(self, key_id: str | None, batch_id: str) -> dict[str, Any]:
        row = self._owned(await self._db(self.store.batch, batch_id), key_id, "batch", batch_id)
        api = self._api(row["provider"])
        upstream = await api.post(f"batches/{row['upstream_id']}/cancel")
        return await self._observe(row, upstream, api)

    async def _observe(
        self, row: dict[str, Any], upstream: dict[str, Any], api: ProviderBatchAPI
    ) -> dict[str, Any]:
        """Book a job the first time it is seen finished; remember its last state."""
        booked = bool(row["booked"])
        if upstream.get("status") in _DONE and not booked:
            async with self._booking:  # polls racing on a finished job book it once
                latest = await self._db(self.store.batch, row["id"])
                if not (latest and latest["booked"]):
                    await self._book(row, upstream, api)
                await self._db(self.store.update_batch, row["id"], upstream, booked=True)
        else:
            await self._db(self.store.update_batch, row["id"], upstream, booked=booked)
        return await self._render(row, upstream)

    async def list(self, key_id: str | None, limit: int, after: str | None) -> dict[str, Any]:
        rows = await self._db(self.store.batches, key_id, limit + 1, after)
        data = [await self._render(row, row["last"]) for row in rows[:limit]]
        return {"object": "list", "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": len(rows) > limit}  # fmt: skip

    async def _render(self, row: dict[str, Any], upstream: dict[str, Any]) -> dict[str, Any]:
        """The provider's batch object with the gateway's ids in place of its own."""
        out = dict(upstream)
        out["id"] = row["id"]
        out["input_file_id"] = row["input_file_id"]
        for field in ("output_file_id", "error_file_id"):
            if upstream.get(field):
                out[field] = await self._local_file(row, str(upstream[field]))
        return out

    async def _local_file(self, row: dict[str, Any], upstream_id: str) -> str:
        known = await self._db(self.store.file_by_upstream, row["provider"], upstream_id)
        if known is not None:
            return str(known["id"])
        file_id = "file-thr" + secrets.token_hex(10)
        source = await self._db(self.store.file, row["input_file_id"]) or {"models": {}}
        await self._db(self.store.add_file, file_id, key_id=row["key_id"], provider=row["provider"],
                            upstream_id=upstream_id, filename=f"{row['id']}_output.jsonl",
                            purpose="batch_output", size=0,
                            models=source["models"])  # fmt: skip
        return file_id

    # ------------------------------------------------------------------ ledger

    async def _book(self, row: dict[str, Any], upstream: dict[str, Any], api: Any) -> None:
        """One ledger row per result line (errors included), at batch prices; then the
        job's budget hold is settled to their sum (what a failed, expired or cancelled job
        did not spend is released)."""
        models = (await self._db(self.store.file, row["input_file_id"]) or {"models": {}})["models"]
        spent, tokens = 0.0, 0
        for field in ("output_file_id", "error_file_id"):
            if not upstream.get(field):
                continue
            content = await api.content(str(upstream[field]))
            for number, raw in enumerate(content.splitlines(), 1):
                if not raw.strip():
                    continue
                try:
                    line = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    line = None
                if not isinstance(line, dict):  # the provider's fault: skip, never a 500
                    log.warning("batch result line is not a JSON object; not booked",
                                extra={"batch_id": row["id"], "line": number})  # fmt: skip
                    continue
                record = self._record(row, line, models)
                spent += record.cost
                tokens += record.usage.input_tokens + record.usage.output_tokens
                self._ledger.submit(record)
        if self._admission is not None and (
            held := await self._db(self.store.claim_hold, row["id"])
        ):
            await self._admission.settle(held, spent, tokens)

    def _record(
        self, row: dict[str, Any], line: dict[str, Any], models: dict[str, str]
    ) -> RequestRecord:
        custom_id = str(line.get("custom_id"))
        response = _object(line.get("response"))
        body = _object(response.get("body"))
        code = response.get("status_code")
        status = code if isinstance(code, int) and not isinstance(code, bool) else 500
        model_name = models.get(custom_id) or str(body.get("model") or "unknown")
        usage = Usage.from_openai(_object(body.get("usage"))) if status == 200 else None
        digest = hashlib.sha256(f"{row['id']}\x00{custom_id}".encode()).hexdigest()
        request_id = f"thr-{digest[:24]}"
        batch_cost: float | None = 0.0
        normal_cost: float | None = None  # the baseline: the line sent as is, not batched
        provider, upstream_model = row["provider"], model_name
        try:
            model = self._registry.get(model_name)
            upstream_model = model.deployments[0].upstream_model
            if usage is not None:
                batch_cost = price(usage, model.price, batch=True).total if model.price else None
                normal_cost = price(usage, model.price).total if model.price else None
        except ThriftyError:
            batch_cost = None if usage is not None else 0.0
        ok = status == 200
        error = _object(body.get("error") or line.get("error")) if not ok else {}
        attempt = AttemptRecord(
            request_id=request_id, seq=0, ts=time.time(), purpose="batch_api",
            model=model_name, upstream_model=upstream_model, provider=provider,
            status="ok" if ok else "error", http_status=status,
            error=None if ok else str(error.get("message") or "failed"), usage=usage,
            cost=batch_cost,
        )  # fmt: skip
        # the provider's own caching of a line is not Thrifty's doing: the baseline keeps
        # it (pipeline/attribution.baseline_usage), so batching is the only saving
        savings = {}
        if normal_cost is not None and batch_cost is not None:
            savings["batching"] = normal_cost - batch_cost
        return RequestRecord(
            request_id=request_id, ts=time.time(), endpoint=CHAT, key_id=row["key_id"],
            tags={"batch_id": row["id"]}, requested_model=model_name, model=model_name,
            provider=provider, status="ok" if ok else "error", http_status=status,
            error_type=None if ok else str(error.get("type") or error.get("code") or "error"),
            error_message=None if ok else attempt.error, usage=usage or Usage(),
            cost=batch_cost or 0.0, unpriced=batch_cost is None,
            baseline_model=model_name if normal_cost is not None else None,
            baseline_cost=normal_cost,
            techniques={"batch": {"mode": "provider_batch", "id": row["id"],
                                  "custom_id": custom_id}},
            savings=savings, attempts=[attempt],
        )  # fmt: skip
