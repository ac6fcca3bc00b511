"""The in-process cache store: an LRU dict with TTL, lost when the process ends."""

from __future__ import annotations

import heapq
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from thrifty.cache.stores.base import CacheEntry, check_bounds

__all__ = ["MemoryCacheStore"]


class MemoryCacheStore:
    """A :class:`~thrifty.cache.stores.base.CacheStore` in a dict, behind one lock.

    Bounds: at most ``max_entries`` entries and, if given, ``max_bytes`` bytes of values;
    each ``set`` evicts least recently used entries until both hold. Expired entries are
    dropped when read and, through a heap ordered by expiry, on every ``set``, so a purge
    costs O(log n) per entry, never a scan.

    >>> store = MemoryCacheStore(max_entries=10_000, max_bytes=256 * 2**20)
    """

    def __init__(self, max_entries: int, max_bytes: int | None = None) -> None:
        check_bounds(max_entries, max_bytes)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()  # oldest use first
        self._expiry: list[tuple[float, str]] = []  # heap; may hold stale pairs
        self._bytes = 0
        self._lock = threading.Lock()
        self._counts = {"hits": 0, "misses": 0, "evictions": 0, "expired": 0}

    def get(self, key: str) -> CacheEntry | None:
        now = time.time()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at is not None and entry.expires_at <= now:
                self._remove(key)
                self._counts["expired"] += 1
                entry = None
            if entry is None:
                self._counts["misses"] += 1
                return None
            entry = replace(entry, hits=entry.hits + 1)
            self._entries[key] = entry
            self._entries.move_to_end(key)
            self._counts["hits"] += 1
            return entry

    def set(
        self,
        key: str,
        value: bytes,
        *,
        ttl_s: float | None,
        scope: str,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        now = time.time()
        with self._lock:
            self._remove(key)
            self._purge_expired(now)
            if (ttl_s is not None and ttl_s <= 0) or (
                self.max_bytes is not None and len(value) > self.max_bytes
            ):
                return
            expires_at = None if ttl_s is None else now + ttl_s
            entry = CacheEntry(key, bytes(value), now, expires_at, scope, dict(meta or {}))
            self._entries[key] = entry
            self._bytes += len(entry.value)
            if expires_at is not None:
                heapq.heappush(self._expiry, (expires_at, key))
            self._evict()

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._remove(key)

    def clear(self, scope: str | None = None) -> int:
        with self._lock:
            keys = [k for k, e in self._entries.items() if scope is None or e.scope == scope]
            for key in keys:
                self._remove(key)
            if scope is None:
                self._expiry.clear()
            return len(keys)

    def __len__(self) -> int:
        with self._lock:
            self._purge_expired(time.time())
            return len(self._entries)

    def stats(self) -> dict[str, int]:
        with self._lock:
            self._purge_expired(time.time())
            return {"entries": len(self._entries), **self._counts}

    def close(self) -> None:
        with self._lock:
            self._entries.clear()
            self._expiry.clear()
            self._bytes = 0

    # -- under the lock -------------------------------------------------------------------

    def _remove(self, key: str) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self._bytes -= len(entry.value)
        return True

    def _purge_expired(self, now: float) -> None:
        heap = self._expiry
        while heap and heap[0][0] <= now:
            expires_at, key = heapq.heappop(heap)
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at == expires_at:
                self._remove(key)
                self._counts["expired"] += 1
        if len(heap) > 2 * len(self._entries) + 64:  # stale pairs from replaced entries
            self._expiry = [
                (e.expires_at, k) for k, e in self._entries.items() if e.expires_at is not None
            ]
            heapq.heapify(self._expiry)

    def _evict(self) -> None:
        while len(self._entries) > self.max_entries or (
            self.max_bytes is not None and self._bytes > self.max_bytes
        ):
            key = next(iter(self._entries))
            self._remove(key)
            self._counts["evictions"] += 1
