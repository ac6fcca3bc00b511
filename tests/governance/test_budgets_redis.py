"""Redis budget and rate-limit stores against a real redis-server: no overspend, ever."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from thrifty.governance.budgets.base import BudgetBucket, BudgetExceeded, Reservation

SRC = str(Path(__file__).resolve().parents[2] / "src")
DAY = BudgetBucket("key:k1", "day", "2026-11-28", 1.00, time.time() + 3600)
TEAM = BudgetBucket("team:research", "month", "2026-11", 5.00, time.time() + 86_400)


def _stores(url: str, prefix: str, on_error: str = "closed"):
    from thrifty.governance.budgets.redis import RedisBudgetStore, RedisRateLimitStore
    from thrifty.stores.config import RedisConfig
    from thrifty.stores.redis import RedisLink

    def link() -> RedisLink:
        return RedisLink(RedisConfig(url=url, prefix=prefix, retry_after_s=0))

    return (
        RedisBudgetStore(link(), on_error=on_error),  # type: ignore[arg-type]
        RedisRateLimitStore(link(), on_error=on_error),  # type: ignore[arg-type]
    )


async def _reserve_many(store, n: int, amount: float) -> list[Reservation | BudgetExceeded]:
    async def one() -> Reservation | BudgetExceeded:
        try:
            return await store.reserve((DAY, TEAM), amount, ttl_s=60)
        except BudgetExceeded as exc:
            return exc

    return await asyncio.gather(*(one() for _ in range(n)))


def test_200_concurrent_reservations_never_overspend(redis_server, redis_prefix) -> None:
    async def run() -> None:
        store, _ = _stores(redis_server.url, redis_prefix)
        results = await _reserve_many(store, 200, 0.01)
        granted = [r for r in results if isinstance(r, Reservation)]
        refused = [r for r in results if isinstance(r, BudgetExceeded)]
        assert len(granted) == 100 and len(refused) == 100  # $1.00 / $0.01, exactly
        assert refused[0].usage.bucket == DAY and refused[0].requested_usd == 0.01
        day, team = await store.usage((DAY, TEAM))
        assert (day.spent_usd, day.reserved_usd) == (0.0, pytest.approx(1.00))
        assert team.reserved_usd == pytest.approx(1.00)
        await asyncio.gather(*(store.settle(r, 0.004) for r in granted))
        await asyncio.gather(*(store.settle(r, 0.004) for r in granted))  # idempotent
        day, team = await store.usage((DAY, TEAM))
        assert day.spent_usd == pytest.approx(0.40) and day.reserved_usd == 0.0
        assert team.spent_usd == pytest.approx(0.40)
        # settled money frees the rest: 60 more fit, the 61st does not
        results = await _reserve_many(store, 70, 0.01)
        assert sum(isinstance(r, Reservation) for r in results) == 60
        await store.aclose()

    asyncio.run(run())


_CHILD = """
import asyncio, json, sys, time
sys.path.insert(0, {src!r})
from thrifty.governance.budgets.redis import RedisBudgetStore
from thrifty.governance.budgets.base import BudgetBucket, BudgetExceeded
from thrifty.stores.config import RedisConfig
from thrifty.stores.redis import RedisLink

bucket = BudgetBucket("key:shared", "lifetime", "lifetime", 0.50, None)

async def main():
    store = RedisBudgetStore(RedisLink(RedisConfig(url={url!r}, prefix={prefix!r})))
    while time.time() < {start}:  # both processes start reserving at the same moment
        await asyncio.sleep(0.001)
    async def one():
        try:
            return await store.reserve((bucket,), 0.01, ttl_s=60)
        except BudgetExceeded:
            return None
    results = await asyncio.gather(*(one() for _ in range(100)))
    print(json.dumps(sum(r is not None for r in results)))
    await store.aclose()

asyncio.run(main())
"""


@pytest.mark.slow
def test_two_processes_share_one_budget(redis_server, redis_prefix) -> None:
    code = _CHILD.format(
        src=SRC, url=redis_server.url, prefix=redis_prefix, start=time.time() + 1.5
    )
    children = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE) for _ in range(2)
    ]
    granted = [json.loads(child.communicate(timeout=60)[0]) for child in children]
    assert all(child.returncode == 0 for child in children)
    assert sum(granted) == 50  # $0.50 / $0.01 across both processes, never more

    async def check() -> None:
        store, _ = _stores(redis_server.url, redis_prefix)
        bucket = BudgetBucket("key:shared", "lifetime", "lifetime", 0.50, None)
        [usage] = await store.usage((bucket,))
        assert usage.reserved_usd == pytest.approx(0.50)
        await store.aclose()

    asyncio.run(check())


def test_reserve_is_all_or_nothing(redis_server, redis_prefix) -> None:
    async def run() -> None:
        store, _ = _stores(redis_server.url, redis_prefix)
        tight = BudgetBucket("tag:tight", "day", "2026-11-28", 0.05, time.time() + 3600)
        with pytest.raises(BudgetExceeded) as info:
            await store.reserve((DAY, tight), 0.06, ttl_s=60)
        assert info.value.usage.bucket == tight
        day, _ = await store.usage((DAY, tight))
        assert day.reserved_usd == 0.0  # nothing held in the bucket that had room
        await store.aclose()

    asyncio.run(run())


def test_expired_reservation_counts_as_spent_until_settled(redis_server, redis_prefix) -> None:
    async def run() -> None:
        store, _ = _stores(redis_server.url, redis_prefix)
        hold = await store.reserve((DAY,), 0.30, ttl_s=0.2)
        await asyncio.sleep(0.3)
        [usage] = await store.usage((DAY,))
        assert (usage.spent_usd, usage.reserved_usd) == (pytest.approx(0.30), 0.0)
        await store.settle(hold, 0.10)  # late: corrects spend to the actual
        [usage] = await store.usage((DAY,))
        assert (usage.spent_usd, usage.reserved_usd) == (pytest.approx(0.10), 0.0)
        await store.aclose()

    asyncio.run(run())


def test_alert_claimed_once_across_callers(redis_server, redis_prefix) -> None:
    async def run() -> None:
        stores = [_stores(redis_server.url, redis_prefix)[0] for _ in range(2)]
        claims = await asyncio.gather(*(s.claim_alert(DAY, 0.8) for s in stores for _ in range(10)))
        assert sum(claims) == 1
        assert await stores[0].claim_alert(DAY, 0.9) is True  # another threshold
        for s in stores:
            await s.aclose()

    asyncio.run(run())


def test_rate_limit_sliding_window(redis_server, redis_prefix) -> None:
    async def run() -> None:
        _, limits = _stores(redis_server.url, redis_prefix)
        decisions = await asyncio.gather(*(limits.hit("key:k1", 20, 1, 60) for _ in range(50)))
        assert sum(d.allowed for d in decisions) == 20  # exactly the limit, concurrently
        denied = next(d for d in decisions if not d.allowed)
        assert 0 < denied.retry_after_s <= 120
        assert all(d.retry_after_s == 0 for d in decisions if d.allowed)
        big = await limits.hit("key:k2", 1000, 1500, 60)  # more than the limit at once
        assert not big.allowed and big.retry_after_s > 0
        tokens = await limits.hit("key:k2", 1000, 900, 60)
        assert tokens.allowed
        assert not (await limits.hit("key:k2", 1000, 200, 60)).allowed
        fast = [await limits.hit("key:k3", 2, 1, 0.2) for _ in range(3)]
        assert [d.allowed for d in fast] == [True, True, False]
        await asyncio.sleep(0.45)  # two windows later nothing of the old one is left
        assert (await limits.hit("key:k3", 2, 1, 0.2)).allowed
        await limits.aclose()

    asyncio.run(run())


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["closed", "open"])
def test_redis_down_fails_closed_or_open(own_redis, redis_prefix, policy: str) -> None:
    from thrifty.governance.budgets.redis import StoreUnavailable

    async def run() -> None:
        store, limits = _stores(own_redis.url, redis_prefix, on_error=policy)
        bucket = BudgetBucket("key:down", "lifetime", "lifetime", 1.0, None)
        await store.reserve((bucket,), 0.1, ttl_s=60)  # connected while Redis is up
        own_redis.stop()
        if policy == "closed":
            with pytest.raises(StoreUnavailable):
                await store.reserve((bucket,), 0.1, ttl_s=60)
            with pytest.raises(StoreUnavailable):
                await limits.hit("key:down", 10, 1, 60)
        else:
            hold = await store.reserve((bucket,), 0.1, ttl_s=60)
            assert hold.id.startswith("unreserved-")
            assert (await limits.hit("key:down", 10, 1, 60)).allowed
        assert store.unavailable >= 1 and store.breaker.down
        own_redis.start()  # same port, empty (no persistence)
        if policy == "open":
            await store.settle(hold, 0.07)  # the unreserved spend is booked once Redis is back
            [usage] = await store.usage((bucket,))
            assert (usage.spent_usd, usage.reserved_usd) == (pytest.approx(0.07), 0.0)
        assert isinstance(await store.reserve((bucket,), 0.1, ttl_s=60), Reservation)
        assert not store.breaker.down
        await store.aclose()
        await limits.aclose()

    asyncio.run(run())
