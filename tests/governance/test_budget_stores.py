"""Budget and rate-limit stores (memory and SQLite): reservation and settlement arithmetic,
all-or-none reservations, expiry, once-only alerts, and no overspend across processes."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest

from thrifty.config import parse_config
from thrifty.governance.budgets.base import (
    BudgetBucket,
    BudgetExceeded,
    BudgetStore,
    RateLimitStore,
)
from thrifty.governance.budgets.buckets import buckets_for, window
from thrifty.governance.budgets.memory import MemoryBudgetStore, MemoryRateLimitStore
from thrifty.governance.budgets.sqlite import SqliteBudgetStore, SqliteRateLimitStore
from thrifty.governance.config import BudgetConfig
from thrifty.governance.keys.identity import Caller, KeyBudget

TEAM = BudgetBucket("team:research", "day", "2026-11-28", 1.00, 1764374400.0)
KEY = BudgetBucket("key:key-abc", "lifetime", "lifetime", 0.30, None)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BudgetStore]:
    made: BudgetStore = (
        MemoryBudgetStore() if request.param == "memory" else SqliteBudgetStore(tmp_path / "b.db")
    )
    yield made
    asyncio.run(made.aclose())


@pytest.fixture(params=["memory", "sqlite"])
def rates(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RateLimitStore]:
    made: RateLimitStore = (
        MemoryRateLimitStore()
        if request.param == "memory"
        else SqliteRateLimitStore(tmp_path / "r.db")
    )
    yield made
    asyncio.run(made.aclose())


def test_reserve_then_settle_to_actual(store: BudgetStore) -> None:
    asyncio.run(_reserve_then_settle_to_actual(store))


async def _reserve_then_settle_to_actual(store: BudgetStore) -> None:
    first = await store.reserve((TEAM,), 0.40, ttl_s=60)
    second = await store.reserve((TEAM,), 0.40, ttl_s=60)
    [usage] = await store.usage((TEAM,))
    assert usage.spent_usd == 0 and usage.reserved_usd == pytest.approx(0.80)
    with pytest.raises(BudgetExceeded) as refused:  # 0.80 reserved + 0.40 > 1.00
        await store.reserve((TEAM,), 0.40, ttl_s=60)
    assert refused.value.usage.reserved_usd == pytest.approx(0.80)
    assert refused.value.requested_usd == 0.40
    assert "team:research" in str(refused.value)
    await store.settle(first, 0.10)  # the answer was shorter than the worst case
    [usage] = await store.usage((TEAM,))
    assert usage.spent_usd == pytest.approx(0.10) and usage.reserved_usd == pytest.approx(0.40)
    third = await store.reserve((TEAM,), 0.40, ttl_s=60)  # 0.10 + 0.40 + 0.40 fits
    await store.settle(second, 0.40)
    await store.settle(third, 0.0)  # e.g. an upstream error: nothing spent
    [usage] = await store.usage((TEAM,))
    assert usage.spent_usd == pytest.approx(0.50) and usage.reserved_usd == pytest.approx(0)


def test_settle_is_idempotent(store: BudgetStore) -> None:
    asyncio.run(_settle_is_idempotent(store))


async def _settle_is_idempotent(store: BudgetStore) -> None:
    reservation = await store.reserve((TEAM,), 0.30, ttl_s=60)
    await store.settle(reservation, 0.20)
    await store.settle(reservation, 0.20)
    [usage] = await store.usage((TEAM,))
    assert usage.spent_usd == pytest.approx(0.20) and usage.reserved_usd == pytest.approx(0)


def test_exact_fit_is_admitted(store: BudgetStore) -> None:
    asyncio.run(_exact_fit_is_admitted(store))


async def _exact_fit_is_admitted(store: BudgetStore) -> None:
    bucket = BudgetBucket("key:k", "lifetime", "lifetime", 0.3, None)
    for _ in range(3):  # 0.1 + 0.1 + 0.1 in floats is 0.30000000000000004
        await store.reserve((bucket,), 0.1, ttl_s=60)
    with pytest.raises(BudgetExceeded):
        await store.reserve((bucket,), 0.1, ttl_s=60)


def test_all_buckets_or_none(store: BudgetStore) -> None:
    asyncio.run(_all_buckets_or_none(store))


async def _all_buckets_or_none(store: BudgetStore) -> None:
    await store.reserve((TEAM, KEY), 0.25, ttl_s=60)
    with pytest.raises(BudgetExceeded) as refused:  # fits the team, not the key
        await store.reserve((TEAM, KEY), 0.25, ttl_s=60)
    assert refused.value.usage.bucket == KEY
    team, key = await store.usage((TEAM, KEY))
    assert team.reserved_usd == pytest.approx(0.25), "the team was not charged for the refusal"
    assert key.reserved_usd == pytest.approx(0.25)


def test_expired_reservation_counts_as_spent(store: BudgetStore) -> None:
    asyncio.run(_expired_reservation_counts_as_spent(store))


async def _expired_reservation_counts_as_spent(store: BudgetStore) -> None:
    reservation = await store.reserve((TEAM,), 0.40, ttl_s=0.05)
    await asyncio.sleep(0.1)
    [usage] = await store.usage((TEAM,))
    assert usage.spent_usd == pytest.approx(0.40) and usage.reserved_usd == pytest.approx(0)
    await store.settle(reservation, 0.15)  # late settle corrects the spend
    [usage] = await store.usage((TEAM,))
    assert usage.spent_usd == pytest.approx(0.15)
    await store.settle(reservation, 0.15)
    [usage] = await store.usage((TEAM,))
    assert usage.spent_usd == pytest.approx(0.15)


def test_windows_are_separate(store: BudgetStore) -> None:
    asyncio.run(_windows_are_separate(store))


async def _windows_are_separate(store: BudgetStore) -> None:
    tomorrow = BudgetBucket("team:research", "day", "2026-11-29", 1.00, 1764460800.0)
    await store.reserve((TEAM,), 1.00, ttl_s=60)
    await store.reserve((tomorrow,), 1.00, ttl_s=60)
    with pytest.raises(BudgetExceeded):
        await store.reserve((TEAM,), 0.01, ttl_s=60)


def test_alert_claimed_once_per_window_and_threshold(store: BudgetStore) -> None:
    asyncio.run(_alert_claimed_once_per_window_and_threshold(store))


async def _alert_claimed_once_per_window_and_threshold(store: BudgetStore) -> None:
    assert await store.claim_alert(TEAM, 0.5) is True
    assert await store.claim_alert(TEAM, 0.5) is False
    assert await store.claim_alert(TEAM, 0.8) is True
    next_day = BudgetBucket("team:research", "day", "2026-11-29", 1.00, None)
    assert await store.claim_alert(next_day, 0.5) is True


def test_rate_limit_counts_and_says_when(rates: RateLimitStore) -> None:
    asyncio.run(_rate_limit_counts_and_says_when(rates))


async def _rate_limit_counts_and_says_when(rates: RateLimitStore) -> None:
    assert (await rates.hit("rpm:k", 3, 1, 60)).allowed
    assert (await rates.hit("rpm:k", 3, 2, 60)).allowed
    refused = await rates.hit("rpm:k", 3, 1, 60)
    assert not refused.allowed and 0 < refused.retry_after_s <= 60
    assert (await rates.hit("rpm:other", 3, 1, 60)).allowed, "scopes are separate"
    window_s = 0.2  # a short window ends, and the count starts over
    while not (await rates.hit("short", 1, 1, window_s)).allowed:
        await asyncio.sleep(0.01)
    blocked = await rates.hit("short", 1, 1, window_s)
    assert not blocked.allowed
    await asyncio.sleep(blocked.retry_after_s + 0.01)
    assert (await rates.hit("short", 1, 1, window_s)).allowed


def test_windows_and_reset_times() -> None:
    now = 1795886000.0  # 2026-11-28T17:13:20Z
    assert window("day", now) == ("2026-11-28", 1795910400.0)  # 2026-11-29T00:00Z
    assert window("month", now) == ("2026-11", 1796083200.0)  # 2026-12-01T00:00Z
    assert window("month", 1797292800.0) == ("2026-12", 1798761600.0)  # -> 2027-01-01
    assert window("lifetime", now) == ("lifetime", None)


def test_buckets_for_key_team_tags() -> None:
    caller = Caller(
        key_id="key-1", source="virtual", team="research", budgets=(KeyBudget("day", 2.0),)
    )
    configured = [
        BudgetConfig(scope="team:research", period="month", limit_usd=50),
        BudgetConfig(scope="tag:env=prod", period="day", limit_usd=5),
        BudgetConfig(scope="tag:beta", period="lifetime", limit_usd=9),
        BudgetConfig(scope="key:key-1", period="day", limit_usd=1.0),  # lower: wins
        BudgetConfig(scope="team:other", period="day", limit_usd=1),
    ]
    tags = {"env": "prod", "beta": "true"}
    buckets = buckets_for(caller, "research", tags, configured, 1795886000.0)
    got = {(b.scope, b.period, b.limit_usd) for b in buckets}
    assert got == {
        ("team:research", "month", 50),
        ("tag:env=prod", "day", 5),
        ("tag:beta", "lifetime", 9),
        ("key:key-1", "day", 1.0),
    }


def _reserve_many(path: str, count: int, results: multiprocessing.Queue) -> None:
    async def work() -> int:
        store = SqliteBudgetStore(path)
        bucket = BudgetBucket("team:shared", "lifetime", "lifetime", 1.0, None)
        admitted = 0
        for _ in range(count):
            try:
                reservation = await store.reserve((bucket,), 0.05, ttl_s=60)
            except BudgetExceeded:
                continue
            admitted += 1
            await store.settle(reservation, 0.05)
        await store.aclose()
        return admitted

    results.put(asyncio.run(work()))


@pytest.mark.slow
def test_sqlite_store_never_overspends_across_processes(tmp_path: Path) -> None:
    """Four processes race for a $1.00 budget in $0.05 steps: exactly 20 get in."""
    path = str(tmp_path / "shared.db")
    SqliteBudgetStore(path)  # create the schema once
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = context.Queue()
    workers = [context.Process(target=_reserve_many, args=(path, 15, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    admitted = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert sum(admitted) == 20

    async def spent() -> float:
        store = SqliteBudgetStore(path)
        bucket = BudgetBucket("team:shared", "lifetime", "lifetime", 1.0, None)
        [usage] = await store.usage((bucket,))
        await store.aclose()
        return usage.spent_usd

    assert asyncio.run(spent()) == pytest.approx(1.0)


def test_governance_config_errors_name_the_key() -> None:
    from tests.config.test_config import MINIMAL, error_of

    def governance(**section: object) -> str:
        return error_of({**MINIMAL, "governance": section})

    message = governance(budgets=[{"scope": "project:x", "limit_usd": 1}])
    assert "governance.budgets.0.scope" in message and "team:<name>" in message
    assert "governance.budgets.0.period" in governance(
        budgets=[{"scope": "team:a", "period": "week", "limit_usd": 1}]
    )
    assert "governance.rate_limits.rpm" in governance(rate_limits={"rpm": 5})
    assert "governance.alerts.webhook_url" in governance(alerts={"webhook_url": "hooks.local"})
    assert "governance.store" in governance(store="mongo")
    config = parse_config(
        {**MINIMAL, "auth": {"admin_keys": ["a"]}, "governance": {"keys_path": "k.db"}}, {}
    )
    assert config.auth.enabled and config.governance.needs_store, "admin keys alone may run auth"
