"""In-process budget and rate-limit stores: one process, no file (tests, the library, replay).

Each operation runs under one lock, so reserve/settle/hit are atomic across tasks and
threads of this process; nothing is shared with other processes.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import dataclass, field

from thrifty.governance.budgets.base import (
    BucketUsage,
    BudgetBucket,
    BudgetExceeded,
    RateDecision,
    Reservation,
)

__all__ = ["MemoryBudgetStore", "MemoryRateLimitStore", "over_limit"]

BucketKey = tuple[str, str, str]

_FORGET_EXPIRED_S = 86_400.0
#: Tolerance of the limit check: sums of float dollars must not refuse an exact fit.
_EPSILON = 1e-12


def bucket_key(bucket: BudgetBucket) -> BucketKey:
    return (bucket.scope, bucket.period, bucket.window)


def over_limit(spent: float, reserved: float, amount: float, limit: float) -> bool:
    """Whether reserving ``amount`` on top of ``spent + reserved`` passes ``limit``."""
    return spent + reserved + amount > limit + _EPSILON


@dataclass(slots=True)
class _Open:
    amount: float
    expires_at: float
    keys: tuple[BucketKey, ...]
    expired: bool = False


@dataclass(slots=True)
class _Totals:
    spent: dict[BucketKey, float] = field(default_factory=dict)
    reserved: dict[BucketKey, float] = field(default_factory=dict)

    def add(self, key: BucketKey, spent: float = 0.0, reserved: float = 0.0) -> None:
        self.spent[key] = self.spent.get(key, 0.0) + spent
        self.reserved[key] = max(0.0, self.reserved.get(key, 0.0) + reserved)


class MemoryBudgetStore:
    """A :class:`~thrifty.governance.budgets.base.BudgetStore` in a dict (this process only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = _Totals()
        self._open: dict[str, _Open] = {}
        self._alerts: set[tuple[BucketKey, float]] = set()

    def _expire(self, now: float) -> None:
        """Count reservations past their ttl as spent at their reserved amount; forget them
        a day later (a late settle can correct the spend until then)."""
        forget = []
        for reservation_id, entry in self._open.items():
            if not entry.expired and entry.expires_at <= now:
                entry.expired = True
                for key in entry.keys:
                    self._totals.add(key, spent=entry.amount, reserved=-entry.amount)
            elif entry.expired and entry.expires_at < now - _FORGET_EXPIRED_S:
                forget.append(reservation_id)
        for reservation_id in forget:
            del self._open[reservation_id]

    async def reserve(
        self, buckets: tuple[BudgetBucket, ...], amount_usd: float, ttl_s: float
    ) -> Reservation:
        now = time.time()
        with self._lock:
            self._expire(now)
            for bucket in buckets:
                key = bucket_key(bucket)
                spent = self._totals.spent.get(key, 0.0)
                reserved = self._totals.reserved.get(key, 0.0)
                if over_limit(spent, reserved, amount_usd, bucket.limit_usd):
                    raise BudgetExceeded(BucketUsage(bucket, spent, reserved), amount_usd)
            keys = tuple(bucket_key(b) for b in buckets)
            for key in keys:
                self._totals.add(key, reserved=amount_usd)
            reservation_id = uuid.uuid4().hex
            self._open[reservation_id] = _Open(amount_usd, now + ttl_s, keys)
        return Reservation(reservation_id, buckets, amount_usd)

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        with self._lock:
            entry = self._open.pop(reservation.id, None)
            if entry is None:
                return  # settled before: idempotent
            for key in entry.keys:
                if entry.expired:  # already counted at its reserved amount: correct it
                    self._totals.add(key, spent=actual_usd - entry.amount)
                else:
                    self._totals.add(key, spent=actual_usd, reserved=-entry.amount)

    async def usage(self, buckets: tuple[BudgetBucket, ...]) -> list[BucketUsage]:
        with self._lock:
            self._expire(time.time())
            return [
                BucketUsage(
                    b,
                    self._totals.spent.get(bucket_key(b), 0.0),
                    self._totals.reserved.get(bucket_key(b), 0.0),
                )
                for b in buckets
            ]

    async def claim_alert(self, bucket: BudgetBucket, threshold: float) -> bool:
        marker = (bucket_key(bucket), threshold)
        with self._lock:
            if marker in self._alerts:
                return False
            self._alerts.add(marker)
            return True

    async def aclose(self) -> None:
        return None


class MemoryRateLimitStore:
    """A :class:`~thrifty.governance.budgets.base.RateLimitStore` with fixed windows, in a dict."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, float, int], int] = {}

    async def hit(self, scope: str, limit: int, amount: int, window_s: float) -> RateDecision:
        now = time.time()
        index = math.floor(now / window_s)
        key = (scope, window_s, index)
        with self._lock:
            count = self._counts.get(key, 0)
            if count + amount > limit:
                return RateDecision(False, (index + 1) * window_s - now)
            self._counts[key] = count + amount
            if len(self._counts) > 10_000:  # drop finished windows
                self._counts = {k: v for k, v in self._counts.items() if k[2] >= index - 1}
        return RateDecision(True, 0.0)

    async def aclose(self) -> None:
        return None
