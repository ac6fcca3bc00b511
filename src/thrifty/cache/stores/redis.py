"""The shared cache store: every replica reads and writes the same Redis.

Each entry is a hash (value, times, scope, meta, hits, size); an LRU sorted set (score =
last use), an expiry sorted set, a byte total and one key set per scope index them. Every
operation is one Lua script, so it is atomic across replicas and costs one round trip;
times come from Redis's clock (``TIME``), so replicas with skewed clocks agree on expiry
and recency. Like the SQLite store, expired entries are never served and are purged on
the next ``set``; bounds evict least recently used entries down to :data:`EVICT_TO`.

When Redis is unreachable the store degrades instead of failing requests: ``get`` is a
miss, ``set`` stores nothing, both return at once while the breaker is open (see
:mod:`thrifty.stores.redis`), and :attr:`RedisCacheStore.unavailable` counts them.
Redis Cluster is not supported (scripts touch keys they discover); use one primary,
with replicas or Sentinel for availability.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, TypeVar

import orjson

from thrifty.cache.stores.base import CacheEntry, check_bounds
from thrifty.stores.redis import Breaker, RedisLink, redis_errors

__all__ = ["EVICT_TO", "RedisCacheStore"]

#: After exceeding a bound, evict down to this fraction of it.
EVICT_TO = 0.95

T = TypeVar("T")

_COMMON = """
local p = ARGV[1]
local lru, exp, total, scopes = p .. 'lru', p .. 'exp', p .. 'bytes', p .. 'scopes'
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function drop(key)
  local e = p .. 'e:' .. key
  local row = redis.call('HMGET', e, 'z', 's')
  redis.call('ZREM', lru, key)
  redis.call('ZREM', exp, key)
  if not row[1] then return 0 end
  redis.call('DECRBY', total, row[1])
  redis.call('SREM', p .. 'scope:' .. row[2], key)
  redis.call('DEL', e)
  return 1
end
"""

_GET = """
local key = ARGV[2]
local e = p .. 'e:' .. key
local row = redis.call('HMGET', e, 'v', 'c', 'x', 's', 'm')
if not row[1] then return false end
if row[3] ~= '' and tonumber(row[3]) <= now then return false end
local hits = redis.call('HINCRBY', e, 'h', 1)
redis.call('ZADD', lru, now, key)
return {row[1], row[2], row[3], row[4], row[5], hits}
"""

# ARGV: prefix, key, value, ttl_s ('' = none, '-' = delete only), scope, meta,
#       max_entries, max_bytes ('' = none), evict_to
_SET = """
local key, value, ttl, scope = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local max_entries, max_bytes, evict_to = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local expired = 0
for _, old in ipairs(redis.call('ZRANGEBYSCORE', exp, '-inf', now, 'LIMIT', 0, 1000)) do
  expired = expired + drop(old)
end
drop(key)
if ttl == '-' then return {expired, 0} end
local expires = ''
if ttl ~= '' then expires = tostring(now + tonumber(ttl)) end
redis.call('HSET', p .. 'e:' .. key, 'v', value, 'c', tostring(now), 'x', expires,
  's', scope, 'm', ARGV[6], 'h', 0, 'z', #value)
redis.call('ZADD', lru, now, key)
if expires ~= '' then redis.call('ZADD', exp, expires, key) end
redis.call('INCRBY', total, #value)
redis.call('SADD', p .. 'scope:' .. scope, key)
redis.call('SADD', scopes, scope)
local evicted = 0
local function evict_oldest(n)
  local done = 0
  for _, old in ipairs(redis.call('ZRANGE', lru, 0, n)) do
    if done >= n then break end
    if old ~= key then done = done + drop(old) end
  end
  return done
end
local count = redis.call('ZCARD', lru)
if count > max_entries then
  local keep = math.max(1, math.floor(max_entries * evict_to))
  evicted = evicted + evict_oldest(count - keep)
end
if max_bytes and tonumber(redis.call('GET', total) or 0) > max_bytes then
  local target = math.floor(max_bytes * evict_to)
  while tonumber(redis.call('GET', total) or 0) > target and redis.call('ZCARD', lru) > 1 do
    local n = evict_oldest(16)
    if n == 0 then break end
    evicted = evicted + n
  end
end
return {expired, evicted}
"""

_DELETE = "return drop(ARGV[2])"

# ARGV: prefix, scope ('' = every scope)
_CLEAR = """
local which = {ARGV[2]}
if ARGV[2] == '' then which = redis.call('SMEMBERS', scopes) end
local removed = 0
for _, scope in ipairs(which) do
  for _, key in ipairs(redis.call('SMEMBERS', p .. 'scope:' .. scope)) do
    removed = removed + drop(key)
  end
  redis.call('DEL', p .. 'scope:' .. scope)
  redis.call('SREM', scopes, scope)
end
return removed
"""

_LEN = "return redis.call('ZCARD', lru) - redis.call('ZCOUNT', exp, '-inf', now)"


class RedisCacheStore:
    """A :class:`~thrifty.cache.stores.base.CacheStore` in a shared Redis.

    ``namespace`` separates stores in one Redis (``<prefix>cache:`` by default). Counters
    in :meth:`stats` are this process's; ``entries`` is the shared total. The store owns
    ``link``: :meth:`close` closes it.

    >>> store = RedisCacheStore(RedisLink(RedisConfig()), max_entries=100_000)  # doctest: +SKIP
    """

    remote = True
    """Every call is a network round trip: the cache stages run them off the event loop."""

    def __init__(
        self,
        link: RedisLink,
        max_entries: int,
        max_bytes: int | None = None,
        *,
        namespace: str = "cache:",
    ) -> None:
        check_bounds(max_entries, max_bytes)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.breaker = Breaker(link.config.retry_after_s, "cache")
        self._link = link
        self._keyspace = link.prefix + namespace
        self._errors = redis_errors()
        client = link.sync
        self._get = client.register_script(_COMMON + _GET)
        self._set = client.register_script(_COMMON + _SET)
        self._delete = client.register_script(_COMMON + _DELETE)
        self._clear = client.register_script(_COMMON + _CLEAR)
        self._len = client.register_script(_COMMON + _LEN)
        self._lock = threading.Lock()
        self._counts = {"hits": 0, "misses": 0, "evictions": 0, "expired": 0}

    def _run(self, script: Any, args: list[Any], fallback: T) -> T | Any:
        """One script call, or ``fallback`` when Redis is down (counted, logged once)."""
        if not self.breaker.allow():
            return fallback
        try:
            result = script(args=[self._keyspace, *args])
        except self._errors as exc:
            self.breaker.failed(exc)
            return fallback
        self.breaker.succeeded()
        return result

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                self._counts[name] += delta

    def get(self, key: str) -> CacheEntry | None:
        row = self._run(self._get, [key], None)
        if not row:
            self._count(misses=1)
            return None
        value, created, expires, scope, meta, hits = row
        self._count(hits=1)
        return CacheEntry(
            key, bytes(value), float(created), float(expires) if expires else None,
            scope.decode(), orjson.loads(meta), int(hits),
        )  # fmt: skip

    def set(
        self,
        key: str,
        value: bytes,
        *,
        ttl_s: float | None,
        scope: str,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        too_big = self.max_bytes is not None and len(value) > self.max_bytes
        ttl = "-" if too_big or (ttl_s is not None and ttl_s <= 0) else _num(ttl_s)
        args = [
            key, bytes(value), ttl, scope, orjson.dumps(dict(meta or {})),
            self.max_entries, _num(self.max_bytes), EVICT_TO,
        ]  # fmt: skip
        expired, evicted = self._run(self._set, args, (0, 0))
        self._count(expired=int(expired), evictions=int(evicted))

    def delete(self, key: str) -> bool:
        return bool(self._run(self._delete, [key], 0))

    def clear(self, scope: str | None = None) -> int:
        """Remove entries for every replica at once (they all read this Redis)."""
        return int(self._run(self._clear, [scope or ""], 0))

    def __len__(self) -> int:
        return int(self._run(self._len, [], 0))

    def stats(self) -> dict[str, int]:
        entries = len(self)
        with self._lock:
            counts = dict(self._counts)
        return {"entries": entries, **counts}

    @property
    def unavailable(self) -> int:
        """Operations that fell back because Redis was down (failed or skipped)."""
        return self.breaker.failures + self.breaker.skipped

    def close(self) -> None:
        """Close the link (its connection pool); idempotent. Entries stay in Redis."""
        self._link.close()


def _num(value: float | int | None) -> str:
    return "" if value is None else repr(value)
