"""The one interface every cache store implements (memory and SQLite now, Redis later)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["STATS_KEYS", "CacheEntry", "CacheStore", "check_bounds"]

#: Keys of :meth:`CacheStore.stats`. Counters (all but ``entries``) count since the store
#: was opened, in this process.
STATS_KEYS = ("entries", "hits", "misses", "evictions", "expired")


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One stored answer, as returned by :meth:`CacheStore.get`.

    Times are Unix seconds (wall clock, so they survive restarts); ``expires_at`` is ``None``
    for an entry without TTL. ``hits`` counts the times the entry was served, this one included.
    """

    key: str
    value: bytes
    created_at: float
    expires_at: float | None
    scope: str
    meta: dict[str, Any] = field(default_factory=dict)
    hits: int = 0


@runtime_checkable
class CacheStore(Protocol):
    """A bounded key → bytes store with TTL and least-recently-used eviction.

    Every method is safe to call from several threads at once (the gateway reads on the
    event-loop thread and writes from a worker thread). ``get`` should be cheap: it must not
    wait for a write in progress.
    """

    def get(self, key: str) -> CacheEntry | None:
        """The live entry under ``key``, or ``None``; expired entries are never returned.

        A hit makes the entry the most recently used and counts as a hit; else a miss.
        """
        ...

    def set(
        self,
        key: str,
        value: bytes,
        *,
        ttl_s: float | None,
        scope: str,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Store ``value`` under ``key``, replacing any entry (hits restart at 0).

        ``ttl_s=None`` keeps it until evicted; ``ttl_s <= 0`` stores nothing and removes any
        entry under ``key``. A value larger than the store's byte bound is not stored.
        ``meta`` must be JSON-serialisable. Least recently used entries are evicted to keep
        the bounds.
        """
        ...

    def delete(self, key: str) -> bool:
        """Remove the entry under ``key``; whether there was one."""
        ...

    def clear(self, scope: str | None = None) -> int:
        """Remove every entry of ``scope`` (all entries when ``None``); how many were removed."""
        ...

    def __len__(self) -> int:
        """The number of live (unexpired) entries."""
        ...

    def stats(self) -> dict[str, int]:
        """Counts keyed by :data:`STATS_KEYS`."""
        ...

    def close(self) -> None:
        """Release resources; idempotent."""
        ...


def check_bounds(max_entries: int, max_bytes: int | None) -> None:
    """Reject bounds that would make a store useless (checked once, in the constructor)."""
    if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
        raise ValueError(f"max_entries must be a positive integer, got {max_entries!r}")
    if max_bytes is not None and (
        isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1
    ):
        raise ValueError(f"max_bytes must be a positive integer or None, got {max_bytes!r}")
