"""Budgets and rate limits shared by every replica: Redis, one Lua script per operation.

A reservation checks every bucket and then reserves in all of them inside one script,
which Redis runs to completion before any other command, so 200 concurrent requests on
any number of replicas can never reserve more than a limit allows (the check-then-add
race that makes other gateways overspend N× with N replicas cannot happen).

Amounts are stored as integer nano-dollars (``HINCRBY``), so thousands of reserve/settle
cycles leave no floating-point residue in a bucket. Per bucket Redis keeps a hash
(``spent``, ``reserved``), the live reservations (id → amount) and their expiry times;
every script first *sweeps* expired reservations into ``spent`` at their reserved amount
(the contract's safe side). A late ``settle`` still corrects such a bucket to the actual
cost. Window buckets expire from Redis 35 days after their window ends.

Redis down: ``redis.budgets_on_error`` decides. ``closed`` (default) raises
:class:`StoreUnavailable`, so the gateway refuses the request rather than spend
unchecked; ``open`` grants an *unreserved* reservation and its ``settle`` adds the actual
cost once Redis answers again (a settle that cannot reach Redis is logged and lost). Rate
limits follow the same policy. Failures are logged once per outage and counted.
"""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any, Literal

from thrifty.errors import StoreUnavailable
from thrifty.governance.budgets.base import (
    BucketUsage,
    BudgetBucket,
    BudgetExceeded,
    RateDecision,
    Reservation,
)
from thrifty.stores.redis import Breaker, RedisLink, redis_errors

__all__ = ["RedisBudgetStore", "RedisRateLimitStore", "StoreUnavailable"]

log = logging.getLogger("thrifty.governance.budgets")

NANO = 1_000_000_000
#: Window buckets stay readable this long after their window ends, then Redis drops them.
KEEP_AFTER_WINDOW_S = 35 * 86_400
#: How long ``settle`` remembers a reservation id (idempotence).
SETTLED_TTL_S = 7 * 86_400
UNRESERVED = "unreserved-"


_COMMON = """
local p = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function sweep(b)
  local bk, hk, zk = p .. 'b:' .. b, p .. 'bv:' .. b, p .. 'bz:' .. b
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', zk, '-inf', now)) do
    local amount = redis.call('HGET', hk, id)
    if amount then
      redis.call('HINCRBY', bk, 'reserved', -tonumber(amount))
      redis.call('HINCRBY', bk, 'spent', amount)
      redis.call('HDEL', hk, id)
    end
    redis.call('ZREM', zk, id)
  end
end
local function usage(b)
  local row = redis.call('HMGET', p .. 'b:' .. b, 'spent', 'reserved')
  return tonumber(row[1] or '0'), tonumber(row[2] or '0')
end
"""

# ARGV: prefix, id, amount, ttl_s, then per bucket: name, limit, keep_until ('' = forever)
_RESERVE = """
local id, amount, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
local n = (#ARGV - 4) / 3
for i = 0, n - 1 do
  local b, limit = ARGV[5 + 3 * i], tonumber(ARGV[6 + 3 * i])
  sweep(b)
  local spent, reserved = usage(b)
  if spent + reserved + tonumber(amount) > limit then
    return {i + 1, tostring(spent), tostring(reserved)}
  end
end
for i = 0, n - 1 do
  local b, keep = ARGV[5 + 3 * i], ARGV[7 + 3 * i]
  local keys = {p .. 'b:' .. b, p .. 'bv:' .. b, p .. 'bz:' .. b}
  redis.call('HINCRBY', keys[1], 'reserved', amount)
  redis.call('HINCRBY', keys[1], 'spent', 0)
  redis.call('HSET', keys[2], id, amount)
  redis.call('ZADD', keys[3], now + ttl, id)
  if keep ~= '' then
    for _, k in ipairs(keys) do redis.call('EXPIREAT', k, keep) end
  end
end
return {0}
"""

# ARGV: prefix, id, actual, reserved_amount, settled_ttl_s, then bucket names
_SETTLE = """
local id, actual, amount = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if not redis.call('SET', p .. 'settled:' .. id, 1, 'NX', 'EX', ARGV[5]) then return 0 end
for i = 6, #ARGV do
  local b = ARGV[i]
  local bk, hk, zk = p .. 'b:' .. b, p .. 'bv:' .. b, p .. 'bz:' .. b
  local live = redis.call('HGET', hk, id)
  if live then
    redis.call('HINCRBY', bk, 'reserved', -tonumber(live))
    redis.call('HINCRBY', bk, 'spent', actual)
    redis.call('HDEL', hk, id)
    redis.call('ZREM', zk, id)
  else
    redis.call('HINCRBY', bk, 'spent', actual - amount)
  end
end
return 1
"""

_USAGE = """
local out = {}
for i = 2, #ARGV do
  sweep(ARGV[i])
  local spent, reserved = usage(ARGV[i])
  out[#out + 1] = tostring(spent)
  out[#out + 1] = tostring(reserved)
end
return out
"""

# ARGV: prefix, scope, limit, amount, window_s. Sliding window: the previous fixed
# window's count, weighted by how much of it still overlaps, plus the current one's.
_HIT = """
local scope, limit, amount, w = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local idx = math.floor(now / w)
local elapsed = now - idx * w
local ck = p .. 'rl:' .. scope .. ':' .. string.format('%d', idx)
local pk = p .. 'rl:' .. scope .. ':' .. string.format('%d', idx - 1)
local cur = tonumber(redis.call('GET', ck) or '0')
local prev = tonumber(redis.call('GET', pk) or '0')
local est = prev * (1 - elapsed / w) + cur
if est + amount <= limit then
  redis.call('INCRBY', ck, amount)
  redis.call('PEXPIRE', ck, math.ceil(w * 2000))
  return {1, '0'}
end
local room = limit - amount
local wait
if amount > limit then
  wait = w
elseif cur <= room and prev > 0 then
  wait = (est - room) / prev * w
else
  wait = (w - elapsed) + w * math.max(0, 1 - room / cur)
end
return {0, tostring(wait)}
"""


def _nano(usd: float) -> int:
    return round(usd * NANO)


def _name(bucket: BudgetBucket) -> str:
    return f"{bucket.scope}|{bucket.period}|{bucket.window}"


def _keep_until(bucket: BudgetBucket) -> str:
    if bucket.resets_at is None:
        return ""
    return str(math.ceil(bucket.resets_at + KEEP_AFTER_WINDOW_S))


class _RedisScripts:
    """Shared plumbing: scripts on the asyncio client, the breaker, the error policy."""

    def __init__(self, link: RedisLink, on_error: Literal["closed", "open"] | None, what: str):
        self._link = link
        self._keyspace = link.prefix + "budget:"
        self.on_error = on_error or link.config.budgets_on_error
        self.breaker = Breaker(link.config.retry_after_s, what)
        self._errors = redis_errors()
        self._scripts: dict[str, Any] = {}

    async def _run(self, source: str, args: list[Any]) -> Any:
        """Run a script; StoreUnavailable when Redis is down (after counting it)."""
        if not self.breaker.allow():
            raise StoreUnavailable("redis unavailable (retrying shortly)")
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._link.aio.register_script(_COMMON + source)
        try:
            result = await script(args=[self._keyspace, *args])
        except self._errors as exc:
            self.breaker.failed(exc)
            raise StoreUnavailable(f"redis unavailable: {exc}") from exc
        self.breaker.succeeded()
        return result

    @property
    def unavailable(self) -> int:
        """Operations that met a Redis outage (failed or skipped while the breaker was open)."""
        return self.breaker.failures + self.breaker.skipped

    async def aclose(self) -> None:
        await self._link.aclose()


class RedisBudgetStore(_RedisScripts):
    """A :class:`~thrifty.governance.budgets.base.BudgetStore` in Redis; owns ``link``.

    ``on_error`` overrides ``redis.budgets_on_error`` ("closed" or "open").

    >>> store = RedisBudgetStore(RedisLink(RedisConfig(url="redis://db:6379/0")))  # doctest: +SKIP
    >>> hold = await store.reserve(buckets, 0.02, ttl_s=600)  # doctest: +SKIP
    >>> await store.settle(hold, 0.0123)  # doctest: +SKIP
    """

    def __init__(
        self, link: RedisLink, *, on_error: Literal["closed", "open"] | None = None
    ) -> None:
        super().__init__(link, on_error, "budgets")

    async def reserve(
        self, buckets: tuple[BudgetBucket, ...], amount_usd: float, ttl_s: float
    ) -> Reservation:
        reservation_id = uuid.uuid4().hex
        args: list[Any] = [reservation_id, _nano(amount_usd), repr(float(ttl_s))]
        for bucket in buckets:
            args += [_name(bucket), _nano(bucket.limit_usd), _keep_until(bucket)]
        try:
            result = await self._run(_RESERVE, args)
        except StoreUnavailable:
            if self.on_error == "closed":
                raise
            log.warning(
                "budget admitted without reservation (redis unavailable, budgets_on_error: open)",
                extra={"amount_usd": amount_usd},
            )
            return Reservation(UNRESERVED + reservation_id, buckets, amount_usd)
        if int(result[0]) != 0:
            bucket = buckets[int(result[0]) - 1]
            usage = BucketUsage(bucket, float(result[1]) / NANO, float(result[2]) / NANO)
            raise BudgetExceeded(usage, amount_usd)
        return Reservation(reservation_id, buckets, amount_usd)

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        held = 0 if reservation.id.startswith(UNRESERVED) else _nano(reservation.amount_usd)
        args = [reservation.id, _nano(actual_usd), held, SETTLED_TTL_S]
        args += [_name(b) for b in reservation.buckets]
        try:
            await self._run(_SETTLE, args)
        except StoreUnavailable:
            # A live reservation expires into ``spent`` at its reserved amount: safe side.
            log.error(
                "budget settle failed: redis unavailable",
                extra={"reservation": reservation.id, "actual_usd": actual_usd},
            )

    async def usage(self, buckets: tuple[BudgetBucket, ...]) -> list[BucketUsage]:
        """Raises :class:`StoreUnavailable` when Redis is down (whatever the policy)."""
        values = await self._run(_USAGE, [_name(b) for b in buckets])
        return [
            BucketUsage(b, float(values[2 * i]) / NANO, float(values[2 * i + 1]) / NANO)
            for i, b in enumerate(buckets)
        ]

    async def claim_alert(self, bucket: BudgetBucket, threshold: float) -> bool:
        """True for exactly one caller per (bucket window, threshold), across replicas."""
        if not self.breaker.allow():
            return False
        key = f"{self._keyspace}alert:{_name(bucket)}|{threshold!r}"
        keep = _keep_until(bucket)
        try:
            claimed = await self._link.aio.set(
                key, 1, nx=True, exat=int(keep) if keep else None
            )
        except self._errors as exc:
            self.breaker.failed(exc)
            return False
        self.breaker.succeeded()
        return bool(claimed)


class RedisRateLimitStore(_RedisScripts):
    """A :class:`~thrifty.governance.budgets.base.RateLimitStore` in Redis (sliding window); owns
    ``link``. Redis down: ``closed`` raises :class:`StoreUnavailable`, ``open`` allows."""

    def __init__(
        self, link: RedisLink, *, on_error: Literal["closed", "open"] | None = None
    ) -> None:
        super().__init__(link, on_error, "rate_limits")

    async def hit(self, scope: str, limit: int, amount: int, window_s: float) -> RateDecision:
        try:
            allowed, wait = await self._run(
                _HIT, [scope, int(limit), int(amount), repr(float(window_s))]
            )
        except StoreUnavailable:
            if self.on_error == "closed":
                raise
            return RateDecision(True, 0.0)
        return RateDecision(bool(int(allowed)), 0.0 if int(allowed) else float(wait))
