"""The outermost stage: turn every request, answered or failed, into one ledger row."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from thrifty.errors import ThriftyError
from thrifty.ledger.record import RequestRecord, attempts_cost
from thrifty.ledger.redact import Redactor
from thrifty.ledger.sink import LedgerSink
from thrifty.pipeline.attribution import account
from thrifty.pipeline.closing import ClosingStream
from thrifty.pipeline.context import CHAT, Context, Reply
from thrifty.pipeline.stage import CallNext
from thrifty.registry import ModelRegistry
from thrifty.usage import Usage

log = logging.getLogger(__name__)


class LedgerStage:
    """Writes a :class:`RequestRecord` when the request ends — for a stream, when the
    stream ends (finished, cut, or abandoned by the client)."""

    def __init__(
        self,
        writer: LedgerSink,
        registry: ModelRegistry,
        *,
        capture_bodies: bool = False,
        redactor: Redactor | None = None,
    ) -> None:
        self._writer = writer
        self._registry = registry
        self._capture = capture_bodies
        self._redactor = redactor or Redactor(())

    async def __call__(self, ctx: Context, call_next: CallNext) -> Reply:
        try:
            reply = await call_next(ctx)
        except BaseException as exc:
            self._record(ctx, None, exc)
            raise
        if reply.chunks is None:
            _cost_headers(reply, self._record(ctx, reply, None))
        else:
            reply.chunks = ClosingStream(self._record_after_stream(ctx, reply, reply.chunks))
        return reply

    async def _record_after_stream(
        self, ctx: Context, reply: Reply, chunks: AsyncIterator[dict[str, Any]]
    ) -> AsyncGenerator[dict[str, Any], None]:
        error: BaseException | None = None
        try:
            async for chunk in chunks:
                yield chunk
        except BaseException as exc:
            error = exc
            raise
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
            # a stream's headers are long sent: these are for the library (CallInfo)
            _cost_headers(reply, self._record(ctx, reply, error))

    def _record(
        self, ctx: Context, reply: Reply | None, error: BaseException | None
    ) -> RequestRecord:
        for finalize in ctx.finalizers:
            finalize(reply if error is None else None)
        cost, unpriced = attempts_cost(ctx.attempts)
        usage = reply.usage if reply is not None else None
        if error is None:
            status, http_status, error_type, message = "ok", 200, None, None
        elif isinstance(error, ThriftyError):
            status, http_status, error_type, message = (
                "error",
                error.status,
                error.type,
                error.message,
            )
        elif (
            isinstance(error, GeneratorExit | KeyboardInterrupt)
            or type(error).__name__ == "CancelledError"
        ):
            status, http_status, error_type, message = (
                "cancelled",
                499,
                "cancelled",
                "client went away",
            )
        else:
            status, http_status, error_type, message = (
                "error",
                500,
                "server_error",
                type(error).__name__,
            )
        baseline_cost, savings = account(ctx, reply, self._registry)
        ctx.booked_savings = dict(savings)
        record = RequestRecord(
            request_id=ctx.request_id,
            ts=ctx.ts,
            endpoint=ctx.endpoint,
            api=ctx.api,
            key_id=ctx.key_id,
            team=ctx.team,
            tags=ctx.tags,
            requested_model=ctx.requested_model,
            model=reply.model if reply is not None else None,
            provider=reply.provider if reply is not None else None,
            stream=ctx.stream,
            status=status,
            http_status=http_status,
            error_type=error_type,
            error_message=message,
            usage=usage or Usage(),
            cost=cost,
            unpriced=unpriced,
            estimated=any(a.usage is not None and a.usage.estimated for a in ctx.attempts),
            baseline_model=ctx.baseline_model if baseline_cost is not None else None,
            baseline_cost=baseline_cost,
            latency_ms=(time.perf_counter() - ctx.started) * 1000,
            ttft_ms=reply.ttft_ms if reply is not None else None,
            techniques=ctx.techniques,
            savings=savings,
            attempts=list(ctx.attempts),
        )
        if self._capture and ctx.endpoint == CHAT and reply is not None:
            _capture(record, ctx, reply, self._redactor)
        self._writer.submit(record)
        return record


_NOT_PARAMS = frozenset({"model", "messages", "stream", "stream_options"})


def _capture(record: RequestRecord, ctx: Context, reply: Reply, redactor: Redactor) -> None:
    record.body = {
        "messages": redactor.messages(ctx.body.get("messages")),
        "params": {k: v for k, v in ctx.body.items() if k not in _NOT_PARAMS},
    }
    record.answer = redactor.text(reply.answer_text())
    record.answer_model = reply.attempt.upstream_model if reply.attempt else None


def _cost_headers(reply: Reply, record: RequestRecord) -> None:
    """``x-thrifty-cost`` and ``x-thrifty-baseline-cost`` from the request's ledger row."""
    reply.headers["x-thrifty-cost"] = _money(record.cost, record.unpriced)
    if record.baseline_cost is not None:
        reply.headers["x-thrifty-baseline-cost"] = _money(record.baseline_cost, False)


def _money(value: float, unpriced: bool) -> str:
    return "unpriced" if unpriced else f"{value:.8f}"
