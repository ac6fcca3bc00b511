"""The contract every budget and rate-limit store keeps (SQLite, memory, Redis).

Budgets are enforced by *reservation*: at admission the gateway reserves a request's
worst-case cost in every bucket that applies to it (its key's, its team's, each tag's;
per day, month or lifetime), in one atomic step that either reserves in all of them or in
none; when the request ends it settles the reservation to the actual cost. A store that
checked and added in two steps would let concurrent requests (or replicas) overspend,
which is what users of other gateways report most.

A reservation a crashed process never settles must not hold budget forever: stores
expire reservations after ``ttl_s`` and count them as spent at their reserved amount
(the safe side: the money may well have been spent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Period = Literal["day", "month", "lifetime"]


@dataclass(frozen=True, slots=True)
class BudgetBucket:
    """One limit in one window, e.g. team ``research``'s spend on 2026-11-28."""

    scope: str  # "key:<id>", "team:<name>", "tag:<name>"
    period: Period
    window: str  # "2026-11-28", "2026-11", or "lifetime"
    limit_usd: float
    resets_at: float | None  # unix time the window ends; None for lifetime


@dataclass(frozen=True, slots=True)
class Reservation:
    """What ``reserve`` granted; ``settle`` needs it back."""

    id: str
    buckets: tuple[BudgetBucket, ...]
    amount_usd: float


@dataclass(frozen=True, slots=True)
class BucketUsage:
    bucket: BudgetBucket
    spent_usd: float
    reserved_usd: float


class BudgetExceeded(Exception):
    """The reservation would take ``bucket`` past its limit; nothing was reserved."""

    def __init__(self, usage: BucketUsage, requested_usd: float) -> None:
        self.usage = usage
        self.requested_usd = requested_usd
        bucket = usage.bucket
        super().__init__(
            f"budget {bucket.scope} ({bucket.period}, {bucket.window}) of "
            f"${bucket.limit_usd:.4f} would be exceeded: spent ${usage.spent_usd:.4f}, "
            f"reserved ${usage.reserved_usd:.4f}, this request needs up to ${requested_usd:.4f}"
        )


class BudgetStore(Protocol):
    """Atomic reserve/settle over many buckets; safe across tasks, threads and processes."""

    async def reserve(
        self, buckets: tuple[BudgetBucket, ...], amount_usd: float, ttl_s: float
    ) -> Reservation:
        """Reserve ``amount_usd`` in every bucket or in none; raise ``BudgetExceeded``."""
        ...

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Replace the reserved amount by ``actual_usd`` in each of its buckets (idempotent)."""
        ...

    async def usage(self, buckets: tuple[BudgetBucket, ...]) -> list[BucketUsage]:
        """Spent and still-reserved amounts, for the dashboard, alerts and errors."""
        ...

    async def claim_alert(self, bucket: BudgetBucket, threshold: float) -> bool:
        """True exactly once per (bucket window, threshold), across processes and replicas:
        whoever claims first sends the alert, everyone after gets False."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after_s: float  # 0 when allowed


class RateLimitStore(Protocol):
    """Counts requests and tokens per key in sliding or fixed one-minute windows."""

    async def hit(self, scope: str, limit: int, amount: int, window_s: float) -> RateDecision:
        """Add ``amount`` to ``scope``'s window unless that passes ``limit`` (atomic)."""
        ...

    async def aclose(self) -> None: ...
