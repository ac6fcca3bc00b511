"""The exact cache stage: the same request (model, messages, every parameter, tenant)
gets the stored answer, at zero cost."""

from __future__ import annotations

import logging

from thrifty.cache.common import Controls, hit_reply, off_loop, scope_of, store_after
from thrifty.cache.config import CacheConfig
from thrifty.cache.keys import exact_key, is_deterministic
from thrifty.cache.stores.base import CacheStore
from thrifty.pipeline.context import CHAT, Context, Reply
from thrifty.pipeline.stage import CallNext
from thrifty.registry import ModelRegistry

log = logging.getLogger(__name__)


class ExactCacheStage:
    def __init__(self, config: CacheConfig, store: CacheStore, registry: ModelRegistry) -> None:
        self._config = config
        self._store = store
        self._registry = registry
        self._remote = bool(getattr(store, "remote", False))

    def close(self) -> None:
        self._store.close()

    async def __call__(self, ctx: Context, call_next: CallNext) -> Reply:
        if ctx.endpoint != CHAT:
            return await call_next(ctx)
        controls = Controls.of(ctx, self._config.ttl_s)
        if not (
            is_deterministic(ctx.body)
            or self._config.cache_nondeterministic
            or controls.allow_random
        ):
            ctx.techniques["cache"] = {
                "result": "bypass",
                "reason": "sampled request (temperature > 0)",
            }
            return await call_next(ctx)
        scope = scope_of(ctx, self._config.scope)
        key = exact_key(ctx.body, scope)
        entry = await off_loop(self._remote, self._store.get, key) if controls.lookup else None
        if entry is not None:
            ctx.techniques["cache"] = {
                "result": "hit",
                "type": "exact",
                "age_s": round(ctx.ts - entry.created_at, 1),
            }
            return hit_reply(ctx, entry.value, self._registry, "exact", {})
        reply = await call_next(ctx)
        ctx.techniques.setdefault("cache", {"result": "miss", "type": "exact"})
        reply.headers.setdefault("x-thrifty-cache", "miss")
        if not controls.store:
            return reply

        def save(value: bytes) -> None:
            # awaited (~0.1 ms on SQLite): the next identical request must find it
            try:
                self._store.set(key, value, ttl_s=controls.ttl_s, scope=scope)
            except Exception:  # a cache that cannot write must not fail the request
                log.warning("cache write failed", exc_info=True)

        return await store_after(reply, save, remote=self._remote)
