"""Open the exact-cache store the config names: SQLite (default), memory or Redis."""

from __future__ import annotations

from thrifty.cache.config import CacheConfig
from thrifty.cache.stores.base import CacheStore
from thrifty.stores.config import RedisConfig

__all__ = ["open_cache_store"]


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
