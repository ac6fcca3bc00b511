"""Open the cache stores the config names: SQLite (default), memory or Redis.

The exact cache's store and the semantic cache's index follow the same ``cache.store``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from thrifty.cache.config import CacheConfig
from thrifty.cache.stores.base import CacheStore
from thrifty.stores.config import RedisConfig

__all__ = ["open_cache_store", "open_semantic_index"]


def open_cache_store(
    config: CacheConfig, *, ephemeral: bool = False, redis: RedisConfig | None = None
) -> CacheStore:
    """``ephemeral`` (replay): in memory, starting empty; ``redis`` is used when
    ``config.store == "redis"`` (defaults when absent)."""
    if not ephemeral and config.store == "redis":
        from thrifty.cache.stores.redis import RedisCacheStore
        from thrifty.stores.redis import RedisLink

        link = RedisLink(redis or RedisConfig())
        return RedisCacheStore(link, config.max_entries, config.max_bytes)
    if ephemeral or config.store == "memory":
        from thrifty.cache.stores.memory import MemoryCacheStore

        return MemoryCacheStore(config.max_entries, config.max_bytes)
    from thrifty.cache.stores.sqlite import SqliteCacheStore

    return SqliteCacheStore(config.path, config.max_entries, config.max_bytes)


def open_semantic_index(
    config: CacheConfig, *, ephemeral: bool = False, redis: RedisConfig | None = None
) -> Any:
    """The semantic cache's index: in process, persisted next to the SQLite cache file,
    or shared through a Redis stream; ``ephemeral`` keeps it in memory only. The two
    kinds share their methods, not a base class."""
    if not ephemeral and config.store == "redis":
        from thrifty.cache.redis_semantic import RedisSemanticIndex
        from thrifty.stores.redis import RedisLink

        return RedisSemanticIndex(RedisLink(redis or RedisConfig()), config.semantic.max_entries)
    from thrifty.cache.semantic_index import SemanticIndex

    memory = ephemeral or config.store == "memory"
    path = None if memory else Path(config.path).with_suffix(".semantic.db")
    return SemanticIndex(path, config.semantic.max_entries)
