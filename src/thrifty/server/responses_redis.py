"""Stored responses in the shared Redis: every replica sees them.

Each response is one key, ``<redis.prefix>responses:<len(tenant)>:<tenant>:<id>`` (the
length keeps ``tenant`` and ``id`` apart whatever they contain), written with a key TTL:
Redis itself expires it after ``ttl_s``, so the total is bounded by what the gateway
stores in one TTL (and by Redis's own ``maxmemory``); an entry larger than ``max_bytes``
is not stored. When Redis cannot be reached (the breaker of :mod:`thrifty.stores.redis`,
component ``responses``), a read is a 503 the client may retry, never a false 404.
"""

from __future__ import annotations

from typing import Any

import orjson

from thrifty.errors import StoreUnavailable
from thrifty.server.responses_store import MAX_BYTES, TTL_S
from thrifty.stores.redis import Breaker, RedisLink, redis_errors

__all__ = ["RedisResponseStore"]


class RedisResponseStore:
    """``(tenant, id) → conversation`` as Redis keys with a TTL."""

    blocks = True

    def __init__(self, link: RedisLink, ttl_s: float = TTL_S, max_bytes: int = MAX_BYTES) -> None:
        self._link = link
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._max_bytes = max_bytes
        self.breaker = Breaker(link.config.retry_after_s, "responses")
        self._errors = redis_errors()

    def _key(self, tenant: str, response_id: str) -> str:
        return f"{self._link.prefix}responses:{len(tenant)}:{tenant}:{response_id}"

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if not self.breaker.allow():
            raise StoreUnavailable("the response store (Redis) is unavailable; retry shortly")
        try:
            result = getattr(self._link.sync, method)(*args, **kwargs)
        except self._errors as exc:
            self.breaker.failed(exc)
            raise StoreUnavailable(
                "the response store (Redis) is unavailable; retry shortly"
            ) from exc
        self.breaker.succeeded()
        return result

    def put(self, tenant: str, response_id: str, messages: list[dict[str, Any]]) -> None:
        data = orjson.dumps(messages)
        if len(data) <= self._max_bytes:
            self._call("set", self._key(tenant, response_id), data, px=self._ttl_ms)

    def get(self, tenant: str, response_id: str) -> list[dict[str, Any]] | None:
        data = self._call("get", self._key(tenant, response_id))
        if data is None:
            return None
        messages: list[dict[str, Any]] = orjson.loads(data)
        return messages

    def close(self) -> None:
        self._link.close()
