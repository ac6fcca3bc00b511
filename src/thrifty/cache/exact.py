"""The exact cache stage: the same request (model, messages, every parameter, tenant)
gets the stored answer, at zero cost.

Every chat response says what the cache did and why, in ``x-thrifty-cache``:
``hit-exact; reason=...``, ``miss; reason=...`` or ``bypass; reason=...``.
"""

from __future__ import annotations

import logging

from thrifty.cache.common import (
    Controls,
    LookupModels,
    cache_header,
    hit_reply,
    off_loop,
    sampled_refusal,
    scope_of,
    store_after,
)
from thrifty.cache.config import CacheConfig
from thrifty.cache.keys import fingerprint_key, request_fingerprint
from thrifty.cache.stores.base import CacheStore
from thrifty.pipeline.context import CHAT, Context, Reply
from thrifty.pipeline.stage import CallNext
from thrifty.registry import ModelRegistry

log = logging.getLogger(__name__)


class ExactCacheStage:
    """Looks up under the models that would answer, stores under the model that answered.

    ``lookup_models`` comes from routing's preview and the cascade's tiers when they are on
    (see ``techniques.py``); without it the request's own model is the one that answers.
    """

    def __init__(
        self,
        config: CacheConfig,
        store: CacheStore,
        registry: ModelRegistry,
        lookup_models: LookupModels | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._registry = registry
        self._remote = bool(getattr(store, "remote", False))
        self.lookup_models = lookup_models

    def close(self) -> None:
        self._store.close()

    async def __call__(self, ctx: Context, call_next: CallNext) -> Reply:
        if ctx.endpoint != CHAT:
            return await call_next(ctx)
        controls = Controls.of(ctx, self._config.ttl_s)
        bypass = self._bypass(ctx, controls)
        if bypass is not None:
            ctx.techniques["cache"] = {"result": "bypass", "reason": bypass}
            reply = await call_next(ctx)
            reply.headers.setdefault("x-thrifty-cache", cache_header("bypass", bypass))
            return reply
        scope = scope_of(ctx, self._config.scope)
        fingerprint = request_fingerprint(ctx.body)  # before later stages rewrite the body
        models = self.lookup_models(ctx) if self.lookup_models is not None else [ctx.model]
        entry, model = None, models[0]
        keys: dict[str, str] = {}  # by model: the write below reuses the answering model's
        for candidate in models if controls.lookup else ():
            key = keys[candidate] = fingerprint_key(fingerprint, scope, candidate)
            entry = await off_loop(self._remote, self._store.get, key)
            if entry is not None:
                model = candidate
                break
        if entry is not None:
            age = round(ctx.ts - entry.created_at, 1)
            ctx.techniques["cache"] = {"result": "hit", "type": "exact", "age_s": age}
            reason = f"the same request to {model}, answered {age} s ago"
            header = {"x-thrifty-cache": cache_header("hit-exact", reason)}
            return hit_reply(ctx, entry.value, self._registry, "exact", header)
        reply = await call_next(ctx)
        result = "miss" if controls.lookup else "bypass"
        names = " or ".join(models)
        why = f"no stored answer from {names}" if controls.lookup else "not looked up (no-cache)"
        ctx.techniques.setdefault("cache", {"result": result, "type": "exact", "reason": why})
        stored = "stored" if controls.store else "not stored (no-store)"
        reply.headers.setdefault("x-thrifty-cache", cache_header(result, f"{why}; {stored}"))
        if not controls.store:
            return reply

        def save(value: bytes) -> None:
            # awaited (~0.1 ms on SQLite): the next identical request must find it. The key
            # is the model that answered (a routed, escalated or fallback model).
            try:
                key = keys.get(reply.model) or fingerprint_key(fingerprint, scope, reply.model)
                self._store.set(key, value, ttl_s=controls.ttl_s, scope=scope)
            except Exception:  # a cache that cannot write must not fail the request
                log.warning("cache write failed", exc_info=True)

        return await store_after(reply, save, remote=self._remote)

    def _bypass(self, ctx: Context, controls: Controls) -> str | None:
        """Why this request neither reads nor writes the cache (None: it does)."""
        if not (controls.lookup or controls.store):
            return "x-thrifty-cache: no-cache, no-store"
        return sampled_refusal(ctx.body, self._config.cache_nondeterministic, controls.allow_random)
