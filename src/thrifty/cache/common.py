"""What the exact and semantic cache stages share: controls, hits, storing answers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from thrifty.cache.keys import is_deterministic
from thrifty.pipeline.assemble import ChunkAssembler
from thrifty.pipeline.context import Context, Reply
from thrifty.pipeline.synthetic_stream import stream_completion
from thrifty.registry import ModelRegistry
from thrifty.usage import Usage

T = TypeVar("T")

#: The models whose stored answer to a request may be served, in lookup order: the one
#: that would answer (routing's pick for an ``auto`` request) and, under a cascade, the
#: tiers the cascade would climb to from there (it accepted their answers for this request).
LookupModels = Callable[["Context"], list[str]]

CACHE_HEADER = "cache"  # x-thrifty-cache: no-store | no-cache | refresh | allow-random
TTL_HEADER = "cache-ttl"  # x-thrifty-cache-ttl: seconds


@dataclass(frozen=True, slots=True)
class Controls:
    lookup: bool
    store: bool
    allow_random: bool
    ttl_s: float | None

    @classmethod
    def of(cls, ctx: Context, default_ttl: float | None) -> Controls:
        words = {
            w.strip().lower() for w in ctx.controls.get(CACHE_HEADER, "").split(",") if w.strip()
        }
        ttl = default_ttl
        raw_ttl = ctx.controls.get(TTL_HEADER)
        if raw_ttl:
            # a bad TTL header keeps the configured TTL rather than failing the call
            with contextlib.suppress(ValueError):
                ttl = max(1.0, float(raw_ttl))
        return cls(
            lookup=not ({"no-cache", "refresh"} & words),
            store="no-store" not in words,
            allow_random="allow-random" in words,
            ttl_s=ttl,
        )


def sampled_refusal(body: dict[str, Any], nondeterministic: bool, allow_random: bool) -> str | None:
    """Why a sampled request is not cached (None: it may be): ``cache.cache_nondeterministic``
    is false and neither the request (``x-thrifty-cache: allow-random``) nor its sampling
    (temperature or top_p 0) allows it. One rule for the exact and the semantic cache."""
    if allow_random or nondeterministic or is_deterministic(body):
        return None
    temperature = body.get("temperature")
    sampled = "unset (1)" if temperature is None else temperature
    return f"sampled request (temperature {sampled}) and cache.cache_nondeterministic is false"


def cache_header(result: str, reason: str) -> str:
    """The ``x-thrifty-cache`` value: ``<result>; reason=<why>`` (one header line: no
    newlines, no semicolons inside the reason)."""
    clean = " ".join(reason.replace(";", ",").split())
    return f"{result}; reason={clean}"


def scope_of(ctx: Context, scope: str) -> str:
    """The tenant whose entries a request may see: its caller key, or everyone."""
    return "global" if scope == "global" else (ctx.key_id or "anonymous")


def hit_reply(
    ctx: Context, stored: bytes, registry: ModelRegistry, kind: str, headers: dict[str, str]
) -> Reply:
    """Answer from a stored response; the ledger books the whole baseline cost as the
    cache's saving (``pipeline/attribution.py``)."""
    record = orjson.loads(stored)
    body, model = record["body"], record["model"]
    usage = Usage.from_openai(body.get("usage")) or Usage()
    reply = Reply(
        model=model,
        provider="cache",
        usage=usage,
        headers={"x-thrifty-cache": f"hit-{kind}", **headers},  # headers may say why
    )
    if ctx.stream:
        reply.chunks = stream_completion(body, ctx.client_wants_usage)
    else:
        reply.body = body
    return reply


def encode_answer(model: str, body: dict[str, Any]) -> bytes:
    return orjson.dumps({"model": model, "body": body, "stored_at": time.time()})


async def off_loop(remote: bool, call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``: in a worker thread for a ``remote`` store, inline otherwise.

    A remote store (Redis) answers over the network; on the event loop every round trip
    (up to ``redis.timeout_s`` when Redis hangs) would stall every request the process
    serves. A local store answers in microseconds, less than a thread hop costs.
    """
    if remote:
        return await asyncio.to_thread(call, *args)
    return call(*args)


async def store_after(
    reply: Reply, save: Callable[[bytes], None], *, remote: bool = False
) -> Reply:
    """Call ``save`` with the answer once it is complete (for a stream: at its end, and
    only if it finished; a cut stream is never cached). The write is awaited, so the next
    identical request finds it; for a ``remote`` store it runs off the event loop."""
    if reply.body is not None:
        if _cacheable(reply.body):
            await off_loop(remote, save, encode_answer(reply.model, reply.body))
        return reply
    if reply.chunks is not None:
        reply.chunks = _assemble_then_save(reply, reply.chunks, save, remote)
    return reply


def _cacheable(body: dict[str, Any]) -> bool:
    """Only finished answers (a truncated one is fine: ``max_tokens`` is in the key)."""
    choices = body.get("choices") or []
    return bool(choices) and all(c.get("finish_reason") for c in choices)


async def _assemble_then_save(
    reply: Reply,
    chunks: AsyncIterator[dict[str, Any]],
    save: Callable[[bytes], None],
    remote: bool,
) -> AsyncIterator[dict[str, Any]]:
    assembler = ChunkAssembler()
    try:
        async for chunk in chunks:
            assembler.add(chunk)
            yield chunk
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    body = assembler.body()
    if body is not None and _cacheable(body):
        if "usage" not in body and reply.usage is not None:
            body["usage"] = reply.usage.to_openai()
        await off_loop(remote, save, encode_answer(reply.model, body))
