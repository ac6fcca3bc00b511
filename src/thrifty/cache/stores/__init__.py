"""Cache stores: where cached answers are kept, behind one :class:`CacheStore` protocol."""

from __future__ import annotations

from thrifty.cache.stores.base import STATS_KEYS, CacheEntry, CacheStore
from thrifty.cache.stores.memory import MemoryCacheStore
from thrifty.cache.stores.sqlite import SqliteCacheStore

__all__ = ["STATS_KEYS", "CacheEntry", "CacheStore", "MemoryCacheStore", "SqliteCacheStore"]
