"""The innermost stage: call the model, with retries and fallbacks, and price each try.

Order of candidates: the model's deployments in config order, then each fallback
model's deployments. Each deployment is tried up to ``retries.max_attempts`` times on
retryable failures (429, 5xx, connection errors, timeouts), waiting ``Retry-After``
when the upstream gives one (up to ``retries.max_retry_after_s``) or an exponential
backoff with jitter. Every try is an :class:`AttemptRecord`, failures included.

A stream is only handed to the caller once its first event with choices has arrived, so
a stream that fails before producing anything, or ends without any choices (an empty
reply), is retried like any other failure. After that, a cut raises
:class:`StreamInterrupted` through the chunk iterator. A complete reply without choices
(or data) is an empty reply too, and usage that cannot be true is replaced by a count.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

from thrifty.errors import ThriftyError, UpstreamError, UpstreamTimeout
from thrifty.ledger.record import AttemptRecord
from thrifty.pipeline.config import RetryConfig
from thrifty.pipeline.context import CHAT, Context, Reply
from thrifty.pipeline.estimate import (
    STREAMED_REASONING,
    STREAMED_TEXT,
    collect_texts,
    estimate_usage,
)
from thrifty.pipeline.provider_cache import note_prompt_cache
from thrifty.pricing import cost as price_usage
from thrifty.providers.base import Provider, ProviderStream
from thrifty.registry import Deployment, ModelRegistry, ResolvedModel
from thrifty.usage import Usage, UsageError, parse_openai

log = logging.getLogger(__name__)


def attempt_cost(usage: Usage | None, model: ResolvedModel) -> float | None:
    """USD cost of a call, or None when the model has no known price (never 0 for unknown)."""
    if usage is None:
        return 0.0
    if model.price is None:
        return None
    return price_usage(usage, model.price).total


def _bill_timeout(
    ctx: Context, model: ResolvedModel, deployment: Deployment, attempt: AttemptRecord
) -> None:
    """A try the provider had but did not answer in time: it bills the prompt at least
    (generation may have run to the end). Booked at the estimated prompt with no answer
    tokens, flagged ``estimated``: a lower bound, counted in the cost and the budgets."""
    usage = estimate_usage(ctx.endpoint, ctx.body, {}, deployment.upstream_model)
    attempt.usage = replace(usage, output_tokens=0)
    attempt.cost = attempt_cost(attempt.usage, model)


class DispatchStage:
    def __init__(
        self, registry: ModelRegistry, providers: dict[str, Provider], retries: RetryConfig
    ) -> None:
        self._registry = registry
        self._providers = providers
        self._retries = retries

    def _candidates(self, model_name: str) -> Iterator[tuple[ResolvedModel, Deployment, str]]:
        model = self._registry.get(model_name)
        for deployment in model.deployments:
            yield model, deployment, "main"
        for fallback_name in model.fallbacks:
            fallback = self._registry.get(fallback_name)
            for deployment in fallback.deployments:
                yield fallback, deployment, "fallback"

    async def __call__(self, ctx: Context, call_next: Any = None) -> Reply:
        last_error: ThriftyError | None = None
        for model, deployment, purpose in self._candidates(ctx.model):
            for try_number in range(self._retries.max_attempts):
                attempt = AttemptRecord(
                    request_id=ctx.request_id,
                    seq=ctx.next_seq(),
                    ts=time.time(),
                    purpose=purpose if try_number == 0 else "retry",
                    model=model.name,
                    upstream_model=deployment.upstream_model,
                    provider=deployment.provider,
                    status="ok",
                    http_status=200,
                    error=None,
                    usage=None,
                    cost=0.0,
                    latency_ms=0.0,
                )
                ctx.attempts.append(attempt)
                started = time.perf_counter()
                try:
                    if ctx.stream and ctx.endpoint == CHAT:
                        return await self._open_stream(ctx, model, deployment, attempt, started)
                    return await self._send(ctx, model, deployment, attempt, started)
                except UpstreamError as exc:
                    attempt.status = "error"
                    attempt.http_status = exc.upstream_status  # None: no reply
                    attempt.error = exc.message
                    attempt.latency_ms = (time.perf_counter() - started) * 1000
                    if isinstance(exc, UpstreamTimeout) and exc.delivered:
                        _bill_timeout(ctx, model, deployment, attempt)
                    last_error = exc
                    log.warning(
                        "upstream attempt failed",
                        extra={
                            "request_id": ctx.request_id,
                            "model": model.name,
                            "provider": deployment.provider,
                            "status": attempt.http_status,
                            "error": exc.message,
                        },
                    )
                    if not exc.retryable:
                        raise
                    delay = self._delay(exc, try_number)
                    if delay is None or try_number + 1 >= self._retries.max_attempts:
                        break  # move on to the next deployment
                    await asyncio.sleep(delay)
        assert last_error is not None
        raise last_error

    def _delay(self, exc: UpstreamError, try_number: int) -> float | None:
        retry_after = exc.retry_after
        if retry_after is not None:
            return retry_after if retry_after <= self._retries.max_retry_after_s else None
        base = self._retries.backoff_initial_s * 2.0**try_number  # (int ** int is Any)
        return min(self._retries.backoff_max_s, base) * (0.5 + random.random() / 2)

    def _upstream_body(self, ctx: Context, deployment: Deployment, stream: bool) -> dict[str, Any]:
        body = dict(ctx.body)
        body["model"] = deployment.upstream_model
        if not stream:  # a stage may answer a streaming client from a complete reply
            body.pop("stream", None)
            body.pop("stream_options", None)
        elif self._providers[deployment.provider].stream_usage:
            options = dict(body.get("stream_options") or {})
            options["include_usage"] = True
            body["stream_options"] = options
        return body

    async def _send(
        self,
        ctx: Context,
        model: ResolvedModel,
        deployment: Deployment,
        attempt: AttemptRecord,
        started: float,
    ) -> Reply:
        provider = self._providers[deployment.provider]
        reply = await provider.send(
            ctx.endpoint.replace(".", "/"), self._upstream_body(ctx, deployment, False)
        )
        _check_not_empty(ctx.endpoint, reply.body, deployment.provider)
        usage = _read_usage(reply.body.get("usage"), ctx.request_id, deployment.provider)
        if usage is None:
            usage = estimate_usage(ctx.endpoint, ctx.body, reply.body, deployment.upstream_model)
            if reply.body.get("usage") is not None:  # unusable: the caller gets our count
                reply.body["usage"] = usage.to_openai()
        attempt.latency_ms = (time.perf_counter() - started) * 1000
        attempt.usage = usage
        attempt.cost = attempt_cost(usage, model)
        note_prompt_cache(ctx, usage, reply.cache_breakpoints, reply.caller_cache_breakpoints)
        return Reply(
            model=model.name,
            provider=deployment.provider,
            body=reply.body,
            usage=usage,
            attempt=attempt,
        )

    async def _open_stream(
        self,
        ctx: Context,
        model: ResolvedModel,
        deployment: Deployment,
        attempt: AttemptRecord,
        started: float,
    ) -> Reply:
        provider = self._providers[deployment.provider]
        stream = await provider.open_stream(
            "chat/completions", self._upstream_body(ctx, deployment, True)
        )
        events = aiter(stream)
        head: list[dict[str, Any]] = []
        try:
            # up to the first chunk with choices (Azure opens with a choiceless filter
            # chunk): a stream that ends before any is empty, a failure to retry
            while len(head) < _HEAD_EVENTS and not (head and head[-1].get("choices")):
                head.append(await anext(events))
        except StopAsyncIteration:
            await stream.aclose()
            what = "any event" if not head else "any choices (an empty reply)"
            error = UpstreamError(
                f"upstream {deployment.provider} stream ended without {what}",
                retryable=True,
                code="upstream_empty_reply" if head else None,
            )
            error.upstream_status = 200
            raise error from None
        except BaseException:
            await stream.aclose()
            raise
        reply = Reply(model=model.name, provider=deployment.provider, attempt=attempt)
        reply.ttft_ms = (time.perf_counter() - ctx.started) * 1000
        # the body as sent: a stage (compression) may put the caller's back before the end
        reply.chunks = _relay(
            ctx, ctx.body, model, deployment, stream, events, head, attempt, reply, started
        )
        return reply


async def _relay(
    ctx: Context,
    sent: dict[str, Any],
    model: ResolvedModel,
    deployment: Deployment,
    stream: ProviderStream,
    events: AsyncIterator[dict[str, Any]],
    head: list[dict[str, Any]],
    attempt: AttemptRecord,
    reply: Reply,
    started: float,
) -> AsyncIterator[dict[str, Any]]:
    """Pass chunks through; take usage from the upstream's usage chunk (then drop that
    chunk if the caller did not ask for it), else count the streamed text."""
    wants_usage = ctx.client_wants_usage
    usage: Usage | None = None
    texts: list[str] = []
    reasoning: list[str] = []
    try:
        pending = list(head)
        event: dict[str, Any] | None = pending.pop(0)
        while event is not None:
            for choice in event.get("choices") or ():
                _stream_texts(choice, texts, reasoning)
            if event.get("usage"):
                usage = _read_usage(event["usage"], ctx.request_id, deployment.provider)
                if usage is None:  # unusable: the caller gets our count (recounted at the end)
                    streamed = {STREAMED_TEXT: "".join(texts),
                                STREAMED_REASONING: "".join(reasoning)}  # fmt: skip
                    counted = estimate_usage(CHAT, sent, streamed, deployment.upstream_model)
                    event = {**event, "usage": counted.to_openai()}
            if wants_usage or not event.get("usage"):
                yield event
            elif event.get("choices"):  # usage riding on a content chunk: keep the content
                yield {k: v for k, v in event.items() if k != "usage"}
            event = pending.pop(0) if pending else await anext(events, None)
    except BaseException as exc:
        attempt.status = "error"
        attempt.error = getattr(exc, "message", None) or type(exc).__name__
        attempt.http_status = getattr(exc, "status", None) if isinstance(exc, ThriftyError) else 499
        raise
    finally:
        await stream.aclose()
        if usage is None:
            streamed = {STREAMED_TEXT: "".join(texts), STREAMED_REASONING: "".join(reasoning)}
            usage = estimate_usage(CHAT, sent, streamed, deployment.upstream_model)
        attempt.usage = usage
        attempt.cost = attempt_cost(usage, model)
        note_prompt_cache(ctx, usage, stream.cache_breakpoints, stream.caller_cache_breakpoints)
        attempt.latency_ms = (time.perf_counter() - started) * 1000
        reply.usage = usage
        reply.streamed_text = "".join(texts)


def _read_usage(raw: Any, request_id: str, provider: str) -> Usage | None:
    """The upstream's usage; None when absent or impossible (negative, absurd, of the
    wrong type): then the tokens are counted and the row is flagged ``estimated``, and
    the rejection is logged, instead of booking -$1 or $1e12."""
    try:
        return parse_openai(raw)
    except UsageError as exc:
        log.warning(
            "upstream usage ignored, tokens estimated",
            extra={"request_id": request_id, "provider": provider, "error": str(exc)},
        )
        return None


_EMPTY_FIELD = {CHAT: "choices", "embeddings": "data"}
_HEAD_EVENTS = 8  # choiceless events read ahead of the first choice, at most


def _check_not_empty(endpoint: str, body: dict[str, Any], provider: str) -> None:
    """A 200 without an answer (no ``choices``/``data``) is an upstream failure: retried
    and failed over like a 5xx, and a 502 if nothing answers, never passed on as 200."""
    field = _EMPTY_FIELD.get(endpoint)
    if field is None:
        return
    value = body.get(field)
    if not isinstance(value, list) or not value:
        error = UpstreamError(
            f"upstream {provider} sent an empty reply (no {field})",
            retryable=True,
            code="upstream_empty_reply",
        )
        error.upstream_status = 200
        raise error


def _stream_texts(choice: dict[str, Any], texts: list[str], reasoning: list[str]) -> None:
    """Collect a chunk choice's streamed answer and reasoning text (see ``collect_texts``)."""
    delta = choice.get("delta")
    if isinstance(delta, dict):
        collect_texts(delta, texts, reasoning)
